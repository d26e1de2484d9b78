using System.Globalization;

namespace HmmSim.Cli.Scenarios;

/// <summary>The arithmetic a scenario may write in a string: "0x1000", "8GiB", "2^43-8GiB", "4*4096",
/// and in addresses one mapping name, "buf+5*4096". Terms are joined by + and -, factors by * and / (integer division); a factor
/// is a decimal or 0x number with an optional K/KiB, M/MiB, G/GiB, T/TiB suffix, 2^N, a name, or (...).</summary>
internal sealed class NumberExpression
{
    private readonly string _text;
    private int _pos;

    public NumberExpression(string text) => _text = text;

    /// <summary>Null on success, else what is wrong.</summary>
    public string? Parse(out string? name, out Int128 value)
    {
        name = null;
        value = 0;
        try
        {
            var (n, coef, v) = Expr();
            Skip();
            if (_pos < _text.Length)
                return $"unexpected '{_text[_pos]}' at position {_pos + 1}";
            if (n is not null && coef != 1)
                return $"the name \"{n}\" must be added once, as in \"{n}+0x1000\"";
            name = coef == 0 ? null : n;
            value = v;
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
        catch (OverflowException)
        {
            return "too large";
        }
    }

    private void Skip()
    {
        while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos]))
            _pos++;
    }

    private bool Eat(char c)
    {
        Skip();
        if (_pos < _text.Length && _text[_pos] == c)
        {
            _pos++;
            return true;
        }
        return false;
    }

    // A value is name*coef + v.
    private (string? Name, Int128 Coef, Int128 V) Expr()
    {
        bool neg = Eat('-');
        var acc = Term();
        if (neg)
            acc = (acc.Name, -acc.Coef, -acc.V);
        while (true)
        {
            int sign = Eat('+') ? 1 : Eat('-') ? -1 : 0;
            if (sign == 0)
                return acc;
            var t = Term();
            if (acc.Name is not null && t.Name is not null && acc.Name != t.Name)
                throw new FormatException($"two names, \"{acc.Name}\" and \"{t.Name}\"");
            acc = (acc.Name ?? t.Name, checked(acc.Coef + sign * t.Coef), checked(acc.V + sign * t.V));
        }
    }

    private (string? Name, Int128 Coef, Int128 V) Term()
    {
        var acc = Factor();
        while (true)
        {
            bool multiply = Eat('*');
            if (!multiply && !Eat('/'))
                return acc;
            var f = Factor();
            if (!multiply)
            {
                if (acc.Name is not null || f.Name is not null)
                    throw new FormatException("a name cannot be divided or divide");
                if (f.V == 0)
                    throw new FormatException("division by zero");
                acc = (null, 0, acc.V / f.V);
                continue;
            }
            if (acc.Name is not null && f.Name is not null)
                throw new FormatException("a name cannot be multiplied by a name");
            acc = acc.Name is not null
                ? (acc.Name, checked(acc.Coef * f.V), checked(acc.V * f.V))
                : (f.Name, checked(f.Coef * acc.V), checked(f.V * acc.V));
        }
    }

    private (string? Name, Int128 Coef, Int128 V) Factor()
    {
        Skip();
        if (Eat('('))
        {
            var e = Expr();
            if (!Eat(')'))
                throw new FormatException("missing ')'");
            return e;
        }
        if (_pos >= _text.Length)
            throw new FormatException(_text.Trim().Length == 0 ? "empty" : "ends too early");
        char c = _text[_pos];
        if (char.IsAsciiLetter(c) || c == '_')
        {
            int start = _pos;
            while (_pos < _text.Length && (char.IsAsciiLetterOrDigit(_text[_pos]) || _text[_pos] is '_' or '.'))
                _pos++;
            return (_text[start.._pos], 1, 0);
        }
        if (!char.IsAsciiDigit(c))
            throw new FormatException($"unexpected '{c}' at position {_pos + 1}");
        Int128 v;
        if (c == '0' && _pos + 1 < _text.Length && (_text[_pos + 1] is 'x' or 'X'))
        {
            _pos += 2;
            int start = _pos;
            while (_pos < _text.Length && (char.IsAsciiHexDigit(_text[_pos]) || _text[_pos] == '_'))
                _pos++;
            string digits = _text[start.._pos].Replace("_", "", StringComparison.Ordinal);
            if (digits.Length == 0 || digits.Length > 16)
                throw new FormatException(digits.Length == 0 ? "\"0x\" without hex digits" : "a hex number of more than 64 bits");
            v = ulong.Parse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        }
        else
        {
            int start = _pos;
            while (_pos < _text.Length && (char.IsAsciiDigit(_text[_pos]) || _text[_pos] == '_'))
                _pos++;
            v = Int128.Parse(_text[start.._pos].Replace("_", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
        }
        if (Eat('^'))
        {
            Skip();
            int start = _pos;
            while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
                _pos++;
            if (start == _pos || !int.TryParse(_text.AsSpan(start, _pos - start), CultureInfo.InvariantCulture, out int exp) || exp > 64)
                throw new FormatException("an exponent must be 0..64");
            Int128 r = 1;
            for (int i = 0; i < exp; i++)
                r = checked(r * v);
            return (null, 0, r);
        }
        int s = _pos;
        while (_pos < _text.Length && char.IsAsciiLetter(_text[_pos]))
            _pos++;
        string suffix = _text[s.._pos];
        int shift = suffix.ToUpperInvariant() switch
        {
            "" => 0,
            "K" or "KIB" => 10,
            "M" or "MIB" => 20,
            "G" or "GIB" => 30,
            "T" or "TIB" => 40,
            _ => throw new FormatException($"unknown size suffix \"{suffix}\" (use KiB, MiB, GiB or TiB)"),
        };
        return (null, 0, checked(v << shift));
    }
}

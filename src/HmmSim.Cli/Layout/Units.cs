using System.Globalization;

namespace HmmSim.Cli.Layout;

/// <summary>Byte sizes and addresses as people write them: "8 GiB", "0x200000000", "2^43".</summary>
internal static class Units
{
    private static readonly string[] _names = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    /// <summary>"8 GiB", "256 MiB", "8.25 GiB": the largest unit in which the value is exact to two
    /// decimals ("65535.5 GiB" rather than a rounded "64 TiB").</summary>
    public static string Human(ulong bytes)
    {
        for (int unit = _names.Length - 1; unit > 0; unit--)
        {
            UInt128 scale = UInt128.One << (10 * unit);
            if (bytes >= scale && (UInt128)bytes * 100 % scale == 0)
                return $"{((double)bytes / (double)scale).ToString("0.##", CultureInfo.InvariantCulture)} {_names[unit]}";
        }
        return $"{bytes.ToString(CultureInfo.InvariantCulture)} B";
    }

    /// <summary>"61 TiB", "≈62.5 GiB": the largest unit in which the value is at least 1, to three
    /// significant digits, marked ≈ when rounded. Drawings use it for sizes and boundaries alike,
    /// so a segment's size and its axis read in the same units.</summary>
    public static string Approx(ulong bytes)
    {
        for (int unit = _names.Length - 1; unit > 0; unit--)
        {
            UInt128 scale = UInt128.One << (10 * unit);
            if (bytes < scale)
                continue;
            double v = (double)bytes / (double)scale;
            string format = v >= 100 ? "0" : v >= 10 ? "0.#" : "0.##";
            string text = v.ToString(format, CultureInfo.InvariantCulture);
            bool exact = double.Parse(text, CultureInfo.InvariantCulture) * (double)scale == bytes;
            return $"{(exact ? "" : "≈")}{text} {_names[unit]}";
        }
        return $"{bytes.ToString(CultureInfo.InvariantCulture)} B";
    }

    public static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>An address or size: decimal or 0x-hex, optionally with a unit (K, KiB, M, MiB, G, GiB,
    /// T, TiB, P, PiB; B), or 2^N. False when it is not a number or does not fit 64 bits.</summary>
    public static bool TryParseSize(string? text, out ulong value)
    {
        value = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var s = text.Trim().Replace("_", "", StringComparison.Ordinal);
        if (s.StartsWith("2^", StringComparison.Ordinal))
        {
            if (!int.TryParse(s.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out int bits) || bits > 63)
                return false;
            value = 1UL << bits;
            return true;
        }
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        int i = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i]))
            i++;
        if (i == 0 || !ulong.TryParse(s.AsSpan(0, i), NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
            return false;
        int shift = s[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 0,
            "K" or "KB" or "KIB" => 10,
            "M" or "MB" or "MIB" => 20,
            "G" or "GB" or "GIB" => 30,
            "T" or "TB" or "TIB" => 40,
            "P" or "PB" or "PIB" => 50,
            _ => -1,
        };
        if (shift < 0 || (shift > 0 && n > ulong.MaxValue >> shift))
            return false;
        value = n << shift;
        return true;
    }
}

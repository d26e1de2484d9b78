using System.CommandLine;
using System.CommandLine.Parsing;

namespace HmmSim.Cli;

/// <summary>Turns System.CommandLine's parse errors into one line in the form users know from git and
/// dotnet: what was not understood and the nearest known command or option.</summary>
internal static class ParseErrors
{
    public static string Describe(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        string prefix = command is RootCommand ? "hmmsim" : "hmmsim " + Path(parsed.CommandResult);
        // An unmatched token says more than "a command is required", so it comes first.
        if (parsed.UnmatchedTokens.Count > 0)
        {
            string token = parsed.UnmatchedTokens[0];
            bool option = token.StartsWith('-');
            var known = option
                ? command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name))
                : command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
            string what = option ? $"'{token}' is not an option of {prefix}" : command.Subcommands.Count > 0 ? $"'{token}' is not a {prefix} command" : $"unexpected argument '{token}'";
            return $"{prefix}: {what}{Suggest(token, known.ToList())} (see {prefix} --help)";
        }
        string message = parsed.Errors[0].Message;
        if (command.Subcommands.Count > 0 && parsed.Tokens.Count == 0)
            message = $"give a command: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))}";
        return $"{prefix}: {message} (see {prefix} --help)";
    }

    private static string Path(CommandResult r)
    {
        var names = new List<string>();
        for (SymbolResult? s = r; s is CommandResult c && c.Command is not RootCommand; s = s.Parent)
            names.Insert(0, c.Command.Name);
        return string.Join(' ', names);
    }

    /// <summary>"; did you mean 'run'?" for the known names within a small edit distance.</summary>
    public static string Suggest(string token, IReadOnlyList<string> known)
    {
        string t = token.TrimStart('-');
        var near = known.Select(k => (Name: k, Distance: Distance(t, k.TrimStart('-'))))
            .Where(x => x.Distance <= Math.Max(2, t.Length / 3) || x.Name.TrimStart('-').StartsWith(t, StringComparison.OrdinalIgnoreCase))
            .OrderBy(x => x.Distance).Select(x => $"'{x.Name}'").Distinct().Take(3).ToList();
        if (near.Count > 0)
            return $"; did you mean {string.Join(" or ", near)}?";
        return known.Count > 0 ? $"; known: {string.Join(", ", known.Distinct())}" : "";
    }

    /// <summary>Levenshtein distance, case-insensitive.</summary>
    private static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}

namespace HmmSim.Cli.Explore;

/// <summary>The first check a randomized run failed: <see cref="Kind"/> is what kind of check
/// (kernel-bug, data, errno, segv, snapshot, cpages, teardown, error), <see cref="Op"/> the
/// scenario operation it failed in, <see cref="Step"/> the index of the randomized step.</summary>
internal sealed record ModelFailure(string Kind, string Op, int Step, string Message)
{
    /// <summary>What shrinking must keep: the same kind of check in the same operation, and for a
    /// BUG the same message with its numbers (addresses, PFNs, counts) left out.</summary>
    public string Signature => Kind == "kernel-bug" || Kind == "teardown" ? $"{Kind}:{Op}:{Normalize(Message)}" : $"{Kind}:{Op}";

    public string Check => $"{Kind} in {Op}";

    public override string ToString() => $"{Check} (random step {Step}): {Message}";

    private static string Normalize(string message)
    {
        var chars = new System.Text.StringBuilder(message.Length);
        bool inNumber = false;
        for (int i = 0; i < message.Length && chars.Length < 120; i++)
        {
            char c = message[i];
            bool digit = char.IsAsciiDigit(c) || (inNumber && (char.IsAsciiHexDigit(c) || c == 'x'));
            if (digit)
            {
                if (!inNumber)
                    chars.Append('#');
                inNumber = true;
                continue;
            }
            inNumber = false;
            chars.Append(c);
        }
        return chars.ToString();
    }
}

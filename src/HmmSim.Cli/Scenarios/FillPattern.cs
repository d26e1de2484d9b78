namespace HmmSim.Cli.Scenarios;

/// <summary>A fill/verify pattern: what the bytes of a range must be.</summary>
internal sealed record FillPattern(PatternKind Kind, int Value, int Start, int Seed)
{
    public byte[] Generate(int length)
    {
        var bytes = new byte[length];
        switch (Kind)
        {
            case PatternKind.Index:
                for (int i = 0; i + 4 <= length; i += 4)
                    BitConverter.TryWriteBytes(bytes.AsSpan(i), unchecked(Start + (i / 4)));
                break;
            case PatternKind.Constant:
                for (int i = 0; i + 4 <= length; i += 4)
                    BitConverter.TryWriteBytes(bytes.AsSpan(i), Value);
                break;
            default:
                new Random(Seed).NextBytes(bytes);
                break;
        }
        return bytes;
    }

    public override string ToString() => Kind switch
    {
        PatternKind.Index => Start == 0 ? "index" : $"index from {Start}",
        PatternKind.Constant => $"constant {Value}",
        _ => $"seeded-random {Seed}",
    };
}

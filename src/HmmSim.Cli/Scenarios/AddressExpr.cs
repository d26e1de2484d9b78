namespace HmmSim.Cli.Scenarios;

/// <summary>An address as a scenario writes it: a named mapping plus an offset ("buf+0x1000"), or an
/// absolute number (Name null).</summary>
internal readonly record struct AddressExpr(string? Name, long Offset)
{
    public bool IsBareName => Name is not null && Offset == 0;

    public ulong Resolve(IReadOnlyDictionary<string, ulong> mappings) =>
        Name is null ? (ulong)Offset : unchecked(mappings[Name] + (ulong)Offset);

    public override string ToString() => Name is null ? $"0x{Offset:x}" : Offset == 0 ? Name : Offset > 0 ? $"{Name}+0x{Offset:x}" : $"{Name}-0x{-Offset:x}";
}

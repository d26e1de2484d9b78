namespace HmmSim.Cli.Scenarios;

/// <summary>`expect.pagemap`: what the /proc/pid/pagemap entry of every page the step covers must say
/// after the step. Unset fields are not checked. Pfn is a number, or <see cref="NonZero"/> for "nonzero".</summary>
internal sealed record PagemapExpectation
{
    public const ulong NonZero = ulong.MaxValue;

    public bool? Present { get; init; }
    public bool? Swapped { get; init; }
    public ulong? Pfn { get; init; }
    public bool? SoftDirty { get; init; }
    public bool? Exclusive { get; init; }
    public bool? FileOrShared { get; init; }
    public bool? UffdWp { get; init; }
    /// <summary>The swap type number (bits 0-4 of a swapped entry).</summary>
    public uint? SwapType { get; init; }
}

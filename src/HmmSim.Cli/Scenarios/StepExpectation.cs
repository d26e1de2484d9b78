namespace HmmSim.Cli.Scenarios;

/// <summary>A step's `expect`: what the operation must return. Unset fields are not checked, except
/// that an operation is expected to succeed (errno None) and not to fault (no SIGSEGV) unless said.</summary>
internal sealed record StepExpectation
{
    public Errno? Errno { get; init; }
    public ulong? CPages { get; init; }
    public ulong? Faults { get; init; }
    public IReadOnlyList<byte>? Snapshot { get; init; }
    public bool Segv { get; init; }
    /// <summary>The pagemap entry of each page the step covers, after the step.</summary>
    public PagemapExpectation? Pagemap { get; init; }
    /// <summary>/proc/vmstat counters: each one's change over the step (after minus before).</summary>
    public IReadOnlyDictionary<string, long>? VmStat { get; init; }
    /// <summary>Once this step has met its expectations, the scenario ends here for this design, passing.</summary>
    public bool Stop { get; init; }

    public static StepExpectation Default { get; } = new();
}

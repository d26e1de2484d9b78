namespace HmmSim.Cli.Scenarios;

/// <summary>One checked operation of a scenario, with where it is in the file.</summary>
internal sealed record ScenarioStep
{
    public required string Op { get; init; }
    /// <summary>The step's number: "4", or "7.2" for the second step inside the repeat at step 7.</summary>
    public required string Index { get; init; }
    public int Line { get; init; }
    public int Column { get; init; }
    public string Process { get; init; } = "";
    public string? Name { get; init; }
    public AddressExpr? At { get; init; }
    public ulong? Length { get; init; }
    public Prot Prot { get; init; }
    public MapFlags MapFlags { get; init; }
    public string? File { get; init; }
    public ulong Offset { get; init; }
    public ulong Align { get; init; }
    public Advice Advice { get; init; }
    public ulong NewLength { get; init; }
    public AddressExpr? NewAt { get; init; }
    public MremapFlags MremapFlags { get; init; }
    public string? Child { get; init; }
    public string? Buffer { get; init; }
    public byte[]? Bytes { get; init; }
    public FillPattern? Pattern { get; init; }
    public int Unit { get; init; }
    public string? Handle { get; init; }
    public ulong Pages { get; init; }
    public DmirrorFlags DmirrorFlags { get; init; }
    public int Count { get; init; }
    public IReadOnlyList<ScenarioStep> Steps { get; init; } = [];
    /// <summary>Designs this step runs under; null means all.</summary>
    public IReadOnlyList<DevicePrivateDesign>? Designs { get; init; }
    public StepExpectation Expect { get; init; } = StepExpectation.Default;
    public IReadOnlyDictionary<DevicePrivateDesign, StepExpectation> ExpectByDesign { get; init; } = new Dictionary<DevicePrivateDesign, StepExpectation>();

    public StepExpectation ExpectFor(DevicePrivateDesign design) => ExpectByDesign.TryGetValue(design, out var e) ? e : Expect;

    public string Describe() => $"step {Index} ({Op}, line {Line})";
}

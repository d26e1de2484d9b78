namespace HmmSim.Cli.Scenarios;

/// <summary>One checked operation of a scenario, with where it is in the file: the part every
/// operation shares, and the operation itself.</summary>
internal sealed record ScenarioStep
{
    public required ScenarioOp Operation { get; init; }
    /// <summary>The step's number: "4", or "7.2" for the second step inside the repeat at step 7.</summary>
    public required string Index { get; init; }
    public int Line { get; init; }
    public int Column { get; init; }
    public string Process { get; init; } = "";
    /// <summary>Designs this step runs under; null means all.</summary>
    public IReadOnlyList<DevicePrivateDesign>? Designs { get; init; }
    public StepExpectation Expect { get; init; } = StepExpectation.Default;
    public IReadOnlyDictionary<DevicePrivateDesign, StepExpectation> ExpectByDesign { get; init; } = new Dictionary<DevicePrivateDesign, StepExpectation>();

    /// <summary>The "op" name as the file writes it.</summary>
    public string Op => Operation.Name;

    public StepExpectation ExpectFor(DevicePrivateDesign design) => ExpectByDesign.TryGetValue(design, out var e) ? e : Expect;

    public string Describe() => $"step {Index} ({Op}, line {Line})";
}

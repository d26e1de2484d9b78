namespace HmmSim.Cli.Scenarios;

/// <summary>A scenario's run under each of its designs.</summary>
internal sealed record ScenarioResult(Scenario Scenario, IReadOnlyList<DesignResult> Designs)
{
    public bool Passed => Designs.All(d => d.Passed);
    public int ExitCode => Passed ? 0 : 1;
}

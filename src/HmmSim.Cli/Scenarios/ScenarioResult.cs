namespace HmmSim.Cli.Scenarios;

/// <summary>A scenario's run under each of its designs.</summary>
internal sealed record ScenarioResult(Scenario Scenario, IReadOnlyList<DesignResult> Designs)
{
    public bool Passed => !Interrupted && Designs.All(d => d.Passed);

    /// <summary>Ctrl-C stopped the run: the designs hold what had run by then.</summary>
    public bool Interrupted => Designs.Any(d => d.Failure?.Kind == "interrupted") || Designs.Count < Scenario.Machine.Designs.Count;

    /// <summary>0 pass, 1 a design failed, 130 interrupted.</summary>
    public int ExitCode => Interrupted ? Interrupt.ExitCode : Passed ? 0 : 1;
}

namespace HmmSim.Cli.Scenarios;

/// <summary>Why a design's run stopped short: an expectation not met (Kind "expectation"), a model bug
/// (Kind "kernel-bug": KernelBugException), or a step that could not run (Kind "error").</summary>
internal sealed record StepFailure(string Step, string Op, int Line, string Kind, string? Expected, string? Actual, string Message)
{
    public override string ToString() => Kind switch
    {
        "expectation" => $"step {Step} ({Op}, line {Line}): {Message}: expected {Expected}, got {Actual}",
        "kernel-bug" => $"step {Step} ({Op}, line {Line}): MODEL BUG (KernelBugException): {Message}",
        _ => $"step {Step} ({Op}, line {Line}): {Message}",
    };
}

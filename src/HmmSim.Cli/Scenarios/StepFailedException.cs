namespace HmmSim.Cli.Scenarios;

/// <summary>Thrown inside the runner to end a design's run with a <see cref="StepFailure"/>.</summary>
internal sealed class StepFailedException : Exception
{
    public StepFailedException(StepFailure failure) : base(failure.ToString()) => Failure = failure;

    public StepFailure Failure { get; }
}

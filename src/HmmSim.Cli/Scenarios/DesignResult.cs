namespace HmmSim.Cli.Scenarios;

/// <summary>One design's run of a scenario on its own fresh machine.</summary>
internal sealed record DesignResult(
    DevicePrivateDesign Design,
    bool Passed,
    int StepsRun,
    int ExpectationsMet,
    long PagesToDevice,
    long PagesToRam,
    long InvariantChecks,
    string? StoppedAt,
    StepFailure? Failure,
    TimeSpan Elapsed,
    IReadOnlyList<PageDump> Dumps)
{
    public string Verdict => Failure is { } f
        ? $"FAIL at {f}"
        : StoppedAt is { } s
            ? $"PASS: {StepsRun} steps, {ExpectationsMet} expectations met; stopped as expected at {s}"
            : $"PASS: {StepsRun} steps, {ExpectationsMet} expectations met";
}

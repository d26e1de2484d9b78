namespace HmmSim.Cli.Scenarios;

/// <summary>A parsed, checked scenario file: the machine, the processes and files made at start, the steps.</summary>
internal sealed record Scenario(
    string File,
    string Name,
    string? Description,
    ScenarioMachine Machine,
    IReadOnlyList<string> Processes,
    IReadOnlyList<KeyValuePair<string, ulong>> Files,
    IReadOnlyList<ScenarioStep> Steps);

namespace HmmSim.Cli.Scenarios;

/// <summary>A scenario file that cannot be run as written: where (file, line, column) and what is wrong.</summary>
internal sealed class ScenarioFileException : Exception
{
    public ScenarioFileException(string file, int line, int column, string problem)
        : base(line > 0 ? $"{file}:{line}:{column}: {problem}" : $"{file}: {problem}")
    {
        File = file;
        Line = line;
        Column = column;
        Problem = problem;
    }

    public string File { get; }
    public int Line { get; }
    public int Column { get; }
    public string Problem { get; }
}

namespace HmmSim.Cli.Tests;

/// <summary>Runs `hmmsim` in-process with its output and errors captured.</summary>
internal static class Cli
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>The repository root (where HmmSim.sln is).</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "HmmSim.sln")))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("HmmSim.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string ExamplesDir => Path.Combine(RepoRoot, "examples");

    /// <summary>Writes a scenario to a fresh temporary file and returns its path.</summary>
    public static string TempScenario(string json)
    {
        string path = Path.Combine(Path.GetTempPath(), $"hmmsim-scenario-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json.ReplaceLineEndings("\n"));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(path);
        return path;
    }
}

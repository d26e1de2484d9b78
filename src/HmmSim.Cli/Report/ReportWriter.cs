namespace HmmSim.Cli.Report;

/// <summary>Writes a `--report` file for a command; a file that cannot be written is one message on stderr.</summary>
internal static class ReportWriter
{
    public static bool TryWrite(string command, string path, Func<HtmlReport> build, TextWriter? error = null)
    {
        ArgumentNullException.ThrowIfNull(build);
        try
        {
            build().Save(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            (error ?? Console.Error).WriteLine($"hmmsim {command}: cannot write --report {path}: {e.Message}");
            return false;
        }
    }
}

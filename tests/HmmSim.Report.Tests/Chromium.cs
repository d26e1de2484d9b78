using System.Diagnostics;

namespace HmmSim.Report.Tests;

/// <summary>Headless Chromium: finds the binary and takes a screenshot of a file, returning its stderr.</summary>
internal static class Chromium
{
    public const string InstallHint = "chromium is not installed: install it with `apt-get update && apt-get install -y chromium` (CI's .ci/run installs it)";

    /// <summary>The chromium binary on PATH, or null.</summary>
    public static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "chromium");
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    /// <summary>Renders <paramref name="htmlPath"/> to <paramref name="pngPath"/>; returns Chromium's exit code and stderr.</summary>
    public static (int ExitCode, string Stderr) Screenshot(string binary, string htmlPath, string pngPath, string userDataDir)
    {
        var (exit, stdout, stderr) = Run(binary, userDataDir, $"--screenshot={pngPath}", "--enable-logging=stderr", "--v=0", new Uri(htmlPath).AbsoluteUri);
        return (exit, stderr + stdout);
    }

    /// <summary>The DOM of <paramref name="htmlPath"/> after its scripts ran (--dump-dom).</summary>
    public static string DumpDom(string binary, string htmlPath, string userDataDir) =>
        Run(binary, userDataDir, "--dump-dom", new Uri(htmlPath).AbsoluteUri).Stdout;

    /// <summary>Headless Chromium with a private profile, no network chatter, 1280x2000 window.</summary>
    private static (int ExitCode, string Stdout, string Stderr) Run(string binary, string userDataDir, params string[] args)
    {
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", $"--user-data-dir={userDataDir}", "--window-size=1280,2000",
        }.Concat(args))
        {
            psi.ArgumentList.Add(a);
        }
        using var p = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"could not start {binary}");
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish within 2 minutes");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>Lines of Chromium's log that report a console error of the page: an uncaught
    /// exception, an ERROR-level console message, or a refused (CSP-blocked) load.</summary>
    public static List<string> ConsoleErrors(string stderr) =>
        [.. stderr.Split('\n').Where(l => l.Contains("CONSOLE", StringComparison.Ordinal)
            && (l.Contains("Uncaught", StringComparison.Ordinal) || l.Contains("ERROR:CONSOLE", StringComparison.Ordinal) || l.Contains("Refused to", StringComparison.Ordinal)))];
}

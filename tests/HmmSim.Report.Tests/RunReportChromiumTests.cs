using HmmSim.Cli.Report;
using HmmSim.Cli.Workloads;

namespace HmmSim.Report.Tests;

/// <summary>The `hmmsim run --report` HTML opened in headless Chromium. Chromium is required: CI
/// installs it; a machine without it fails here with a message saying so.</summary>
public sealed class RunReportChromiumTests
{
    private static readonly byte[] _pngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private static string RunReportHtml() =>
        HtmlReport.ForRun([.. Enum.GetValues<DevicePrivateDesign>().Select(SeedScenario.Run)]).ToHtml();

    [Fact]
    public void RunReportIsSelfContainedWithSvgCharts()
    {
        string html = RunReportHtml();
        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        Assert.Contains("class=\"chart\"", html, StringComparison.Ordinal);
        Assert.Contains("data-space=\"device-private\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("url(", html, StringComparison.OrdinalIgnoreCase);
        foreach (var field in new[] { "pages migrated to device", "THPs migrated to RAM", "device faults (dmirror)", "struct page bytes, kernel", "verdict" })
            Assert.Contains(field, html, StringComparison.Ordinal);
    }

    [Fact]
    public void RunReportRendersInHeadlessChromiumWithoutConsoleErrors()
    {
        string chromium = Chromium.Find() ?? throw new Xunit.Sdk.XunitException(Chromium.InstallHint);
        using var dir = new TempDir();
        string html = RunReportHtml();
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        string htmlPath = dir.File("run.html"), png = dir.File("run.png");
        File.WriteAllText(htmlPath, html);

        var (exit, stderr) = Chromium.Screenshot(chromium, htmlPath, png, dir.File("profile"));

        Assert.True(exit == 0, $"chromium exited {exit}:\n{stderr}");
        Assert.True(File.Exists(png), $"no screenshot written:\n{stderr}");
        var bytes = File.ReadAllBytes(png);
        Assert.True(bytes.Length > 10_000, $"screenshot is only {bytes.Length} bytes");
        Assert.Equal(_pngSignature, bytes[..8]);
        var errors = Chromium.ConsoleErrors(stderr);
        Assert.True(errors.Count == 0, "console errors:\n" + string.Join('\n', errors));
    }

    [Fact]
    public void TheConsoleErrorCheckCatchesAnUncaughtException()
    {
        // A control: the same check must see an error when the page has one.
        string chromium = Chromium.Find() ?? throw new Xunit.Sdk.XunitException(Chromium.InstallHint);
        using var dir = new TempDir();
        string htmlPath = dir.File("bad.html");
        File.WriteAllText(htmlPath, "<!DOCTYPE html><html><body><p>x</p><script>throw new Error('kaboom');</script></body></html>");
        var (_, stderr) = Chromium.Screenshot(chromium, htmlPath, dir.File("bad.png"), dir.File("profile"));
        Assert.Contains(Chromium.ConsoleErrors(stderr), l => l.Contains("kaboom", StringComparison.Ordinal));
    }
}

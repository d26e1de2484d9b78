using System.Diagnostics;

namespace HmmSim.Cli.Tests;

/// <summary>The .NET way of shipping: the library as a NuGet package with its XML docs and README,
/// the CLI as a dotnet tool that installs from a local feed and runs. Slower (packs and installs,
/// about a minute) but offline: every dependency comes from the local NuGet cache.</summary>
[Trait("Category", "Slow")]
public class PackagingTests
{
    private static (int Exit, string Output) Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + stderr.Result);
    }

    [Fact]
    public void ToolInstallsFromAPackedFeedAndRuns()
    {
        string root = Path.Combine(Path.GetTempPath(), $"cli15-pack-{Guid.NewGuid():N}");
        string feed = Path.Combine(root, "feed"), tools = Path.Combine(root, "tools");
        // The configuration these tests were built in; --no-build packs what that build produced.
        string config = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        try
        {
            var lib = Exec("dotnet", "pack", Path.Combine(Cli.RepoRoot, "src", "HmmSim", "HmmSim.csproj"), "-c", config, "--no-build", "-o", feed);
            Assert.True(lib.Exit == 0, lib.Output);
            var tool = Exec("dotnet", "pack", Path.Combine(Cli.RepoRoot, "src", "HmmSim.Cli", "HmmSim.Cli.csproj"), "-c", config, "--no-build", "-o", feed);
            Assert.True(tool.Exit == 0, tool.Output);

            string nupkg = Directory.GetFiles(feed, "HmmSim.*.nupkg").Single(f => char.IsAsciiDigit(Path.GetFileName(f)["HmmSim.".Length]));
            using (var zip = System.IO.Compression.ZipFile.OpenRead(nupkg))
            {
                var names = zip.Entries.Select(e => e.FullName).ToList();
                Assert.Contains("lib/net10.0/HmmSim.dll", names);
                Assert.Contains("lib/net10.0/HmmSim.xml", names);
                Assert.Contains("README.md", names);
            }

            var install = Exec("dotnet", "tool", "install", "--tool-path", tools, "--add-source", feed, "--ignore-failed-sources", "HmmSim.Cli");
            Assert.True(install.Exit == 0, install.Output);
            string hmmsim = Path.Combine(tools, "hmmsim");
            var version = Exec(hmmsim, "--version");
            Assert.True(version.Exit == 0, version.Output);
            Assert.Matches(@"^\d+\.\d+\.\d+", version.Output.Trim());
            var layout = Exec(hmmsim, "layout", "--design", "redesign");
            Assert.True(layout.Exit == 0, layout.Output);
            Assert.Contains("/proc/iomem", layout.Output, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
        }
    }
}

using System.Text.Json;

namespace HmmSim.Cli.Tests;

/// <summary>`hmmsim run`: the built-in scenario, output modes and exit codes.</summary>
public class RunCommandTests
{
    private const string Passing = """
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": "64KiB" },
            { "op": "fill", "at": "buf", "length": "64KiB", "pattern": "index" },
            { "op": "dmirror.open", "unit": 0, "handle": "gpu" },
            { "op": "repeat", "count": 3, "steps": [
              { "op": "dmirror.migrate_to_dev", "handle": "gpu", "at": "buf", "pages": 16, "expect": { "cpages": 16 } },
              { "op": "verify", "at": "buf", "length": "64KiB", "pattern": "index" }
            ] }
          ]
        }
        """;

    [Fact]
    public void BuiltInRunShowsBothDesignsAndExitsZero()
    {
        var (exit, output, _) = Cli.Run("run", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        // One schema for the built-in scenario and files: an object with a designs array.
        Assert.Equal("built-in", doc.RootElement.GetProperty("scenario").GetString());
        Assert.Contains("43-bit", doc.RootElement.GetProperty("machine").GetString(), StringComparison.Ordinal);
        var designs = doc.RootElement.GetProperty("designs").EnumerateArray().Select(d => d.GetProperty("design").GetString()).ToList();
        Assert.Equal(["PhysicalAddressSpace", "DeviceAddressSpace"], designs);
    }

    [Fact]
    public void BuiltInRunTableAndVerdicts()
    {
        var (exit, output, _) = Cli.Run("run");
        Assert.Equal(0, exit);
        Assert.Contains("today (PhysicalAddressSpace)", output, StringComparison.Ordinal);
        Assert.Contains("the seeds' VM", output, StringComparison.Ordinal);
        Assert.Contains("PhysicalAddressSpace: device-private memory cannot be set up", output, StringComparison.Ordinal);
        Assert.Contains("DeviceAddressSpace: every page migrated", output, StringComparison.Ordinal);
        // The rest of the story: each shipped reproducer replayed and caught, the proposals costed.
        var review = output.Split('\n').Single(l => l.StartsWith("Replaying the review", StringComparison.Ordinal));
        foreach (var file in Directory.GetFiles(Path.Combine(Cli.ExamplesDir, "findings"), "*.json"))
        {
            var variant = Path.GetFileNameWithoutExtension(file).Replace('_', '=');
            Assert.Contains($"{variant} caught in dmirror.", review, StringComparison.Ordinal);
        }
        Assert.Contains("HmmPfnLayout=AsPosted: no sequence of test_hmm calls reaches it", review, StringComparison.Ordinal);
        Assert.Contains("per TiB of device memory", output, StringComparison.Ordinal);
        Assert.Contains("struct pages take 16 GiB", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ScenarioTableShowsEveryDesignAndVerdicts()
    {
        string path = Cli.TempScenario(Passing);
        var (exit, output, error) = Cli.Run("run", path);
        Assert.Equal(0, exit);
        Assert.Equal("", error);
        Assert.Contains("pages migrated to device", output, StringComparison.Ordinal);
        Assert.Contains("invariant checks", output, StringComparison.Ordinal);
        Assert.Contains("PhysicalAddressSpace: PASS: 9 steps, 6 expectations met", output, StringComparison.Ordinal);
        Assert.Contains("DeviceAddressSpace: PASS: 9 steps, 6 expectations met", output, StringComparison.Ordinal);
    }

    [Fact]
    public void QuietPrintsOnlyVerdicts()
    {
        var (exit, output, _) = Cli.Run("run", Cli.TempScenario(Passing), "--quiet");
        Assert.Equal(0, exit);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("PhysicalAddressSpace: PASS", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("DeviceAddressSpace: PASS", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void JsonShape()
    {
        string path = Cli.TempScenario(Passing);
        var (exit, output, _) = Cli.Run("run", path, "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal(path, root.GetProperty("file").GetString());
        Assert.Equal(Path.GetFileNameWithoutExtension(path), root.GetProperty("scenario").GetString());
        Assert.True(root.GetProperty("passed").GetBoolean());
        Assert.Equal(0, root.GetProperty("exitCode").GetInt32());
        var designs = root.GetProperty("designs").EnumerateArray().ToList();
        Assert.Equal(2, designs.Count);
        foreach (var d in designs)
        {
            Assert.Equal(9, d.GetProperty("stepsRun").GetInt32());
            Assert.Equal(6, d.GetProperty("expectationsMet").GetInt32());
            Assert.Equal(48, d.GetProperty("pagesToDevice").GetInt64());
            Assert.Equal(48, d.GetProperty("pagesToRam").GetInt64());
            Assert.True(d.GetProperty("invariantChecks").GetInt64() > 0);
            Assert.Equal(JsonValueKind.Null, d.GetProperty("failure").ValueKind);
            Assert.Equal(JsonValueKind.Null, d.GetProperty("stoppedAt").ValueKind);
            Assert.StartsWith("PASS", d.GetProperty("verdict").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ExpectationFailureNamesTheStepAndShowsExpectedVsActual()
    {
        string path = Cli.TempScenario("""
            {
              "machine": { "designs": "DeviceAddressSpace" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": "64KiB" },
                { "op": "dmirror.open", "unit": 0, "handle": "gpu" },
                { "op": "dmirror.migrate_to_dev", "handle": "gpu", "at": "buf", "pages": 16, "expect": { "cpages": 15 } }
              ]
            }
            """);
        var (exit, output, error) = Cli.Run("run", path);
        Assert.Equal(1, exit);
        Assert.Contains("step 3 (dmirror.migrate_to_dev, line 6): cpages: expected 15, got 16", error, StringComparison.Ordinal);
        Assert.Contains(path, error, StringComparison.Ordinal);
        Assert.Contains("DeviceAddressSpace: FAIL at step 3", output, StringComparison.Ordinal);
    }

    [Fact]
    public void FailureJsonCarriesExpectedAndActual()
    {
        string path = Cli.TempScenario("""
            { "steps": [
                { "op": "mmap", "name": "buf", "length": 4096, "prot": "Read" },
                { "op": "verify", "at": "buf", "length": 8, "pattern": "constant", "value": 7 }
            ] }
            """);
        var (exit, output, _) = Cli.Run("run", path, "--json");
        Assert.Equal(1, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.False(doc.RootElement.GetProperty("passed").GetBoolean());
        Assert.Equal(1, doc.RootElement.GetProperty("exitCode").GetInt32());
        var f = doc.RootElement.GetProperty("designs")[0].GetProperty("failure");
        Assert.Equal("2", f.GetProperty("step").GetString());
        Assert.Equal("verify", f.GetProperty("op").GetString());
        Assert.Equal("expectation", f.GetProperty("kind").GetString());
        Assert.Equal("7", f.GetProperty("expected").GetString());
        Assert.Equal("0", f.GetProperty("actual").GetString());
    }

    [Fact]
    public void UnexpectedSegvFailsAndExpectedSegvPasses()
    {
        string bad = Cli.TempScenario("""
            { "steps": [
                { "op": "mmap", "name": "buf", "length": 4096, "prot": "Read" },
                { "op": "write", "at": "buf", "int": 1 }
            ] }
            """);
        var (exit, _, error) = Cli.Run("run", bad, "--quiet");
        Assert.Equal(1, exit);
        Assert.Contains("step 2 (write, line 3): CPU access: expected no fault, got SIGSEGV at 0x", error, StringComparison.Ordinal);

        string good = Cli.TempScenario("""
            { "steps": [
                { "op": "mmap", "name": "buf", "length": 4096, "prot": "Read" },
                { "op": "write", "at": "buf", "int": 1, "expect": { "segv": true } }
            ] }
            """);
        Assert.Equal(0, Cli.Run("run", good, "--quiet").Exit);
    }

    [Fact]
    public void ExpectByDesignAppliesToItsDesignOnly()
    {
        // On the default 46-bit machine both designs probe: an ENOENT expected of today's design is not met.
        string path = Cli.TempScenario("""
            { "steps": [
                { "op": "dmirror.open", "unit": 0, "handle": "gpu",
                  "expectByDesign": { "PhysicalAddressSpace": { "errno": "ENOENT", "stop": true } } }
            ] }
            """);
        var (exit, output, _) = Cli.Run("run", path, "--quiet");
        Assert.Equal(1, exit);
        Assert.Contains("PhysicalAddressSpace: FAIL at step 1 (dmirror.open, line 2): errno: expected ENOENT, got None", output, StringComparison.Ordinal);
        Assert.Contains("DeviceAddressSpace: PASS", output, StringComparison.Ordinal);
    }

    [Fact]
    public void KernelBugIsReportedAndExitsOne()
    {
        // lib/test_hmm.c reading its own device-private pages through the CPU after fork invalidated
        // the mirror: an oops in the kernel, a KernelBugException in the model.
        string path = Cli.TempScenario("""
            {
              "machine": { "designs": ["DeviceAddressSpace"] },
              "steps": [
                { "op": "mmap", "name": "buf", "length": "64KiB" },
                { "op": "fill", "at": "buf", "length": "64KiB", "pattern": "index" },
                { "op": "dmirror.open", "unit": 0, "handle": "gpu" },
                { "op": "dmirror.migrate_to_dev", "handle": "gpu", "at": "buf", "pages": 16 },
                { "op": "fork", "child": "child" },
                { "op": "dmirror.read", "handle": "gpu", "at": "buf", "pages": 16 }
              ]
            }
            """);
        var (exit, output, error) = Cli.Run("run", path);
        Assert.Equal(1, exit);
        Assert.Contains("step 6 (dmirror.read, line 9): MODEL BUG (KernelBugException)", error, StringComparison.Ordinal);
        Assert.Contains("DeviceAddressSpace: FAIL", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void UsingAHandleWhoseOpenFailedIsAStepError()
    {
        string path = Cli.TempScenario("""
            {
              "machine": { "physicalAddressBits": 43, "pciWindows": [ { "start": "8GiB", "length": "2^43-8GiB" } ], "designs": "PhysicalAddressSpace" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": 4096 },
                { "op": "dmirror.open", "unit": 0, "handle": "gpu", "expect": { "errno": "ENOENT" } },
                { "op": "dmirror.read", "handle": "gpu", "at": "buf", "pages": 1 }
              ]
            }
            """);
        var (exit, _, error) = Cli.Run("run", path, "--quiet");
        Assert.Equal(1, exit);
        Assert.Contains("step 3 (dmirror.read, line 6): handle \"gpu\" is not open: its open of /dev/hmm_dmirror0 at step 2 failed with ENOENT", error, StringComparison.Ordinal);
    }

    [Fact]
    public void VersionWritesToTheGivenWriter()
    {
        var (exit, output, _) = Cli.Run("version");
        Assert.Equal(0, exit);
        Assert.StartsWith("hmmsim ", output, StringComparison.Ordinal);
    }
}

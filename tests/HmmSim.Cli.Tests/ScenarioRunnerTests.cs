using System.Text;
using HmmSim.Cli.Scenarios;

namespace HmmSim.Cli.Tests;

/// <summary>The parser and runner directly, without the command line.</summary>
public class ScenarioRunnerTests
{
    private static ScenarioResult Run(string json) => ScenarioRunner.Run(ScenarioFile.Parse(Encoding.UTF8.GetBytes(json.ReplaceLineEndings("\n")), "test.json"));

    [Fact]
    public void StopEndsTheDesignAsAPass()
    {
        var r = Run("""
            {
              "machine": { "designs": "DeviceAddressSpace" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": 4096, "prot": "Read", "expect": { "errno": "None", "stop": true } },
                { "op": "write", "at": "buf", "int": 1 }
              ]
            }
            """);
        var d = Assert.Single(r.Designs);
        Assert.True(d.Passed);
        Assert.Equal(1, d.StepsRun);
        Assert.Equal("step 1 (mmap, line 4)", d.StoppedAt);
        Assert.Equal(0, r.ExitCode);
    }

    [Fact]
    public void StepsFilteredByDesignRunOnlyThere()
    {
        var r = Run("""
            {
              "steps": [
                { "op": "mmap", "name": "buf", "length": 4096 },
                { "op": "write", "at": "buf", "int": 7, "designs": "DeviceAddressSpace" },
                { "op": "verify", "at": "buf", "length": 4, "pattern": "constant", "value": 7, "designs": ["DeviceAddressSpace"] },
                { "op": "verify", "at": "buf", "length": 4, "pattern": "constant", "value": 0, "designs": "PhysicalAddressSpace" }
              ]
            }
            """);
        Assert.True(r.Passed);
        Assert.Equal(2, r.Designs[0].StepsRun);
        Assert.Equal(3, r.Designs[1].StepsRun);
    }

    [Fact]
    public void FailureInsideRepeatNamesTheIteration()
    {
        var r = Run("""
            {
              "machine": { "designs": "DeviceAddressSpace" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": 4096 },
                { "op": "repeat", "count": 5, "steps": [
                  { "op": "verify", "at": "buf", "length": 4, "pattern": "constant", "value": 0 },
                  { "op": "write", "at": "buf", "int": 1 }
                ] }
              ]
            }
            """);
        var f = Assert.Single(r.Designs).Failure!;
        Assert.Equal("2.1 (iteration 2 of 5)", f.Step);
        Assert.Equal("verify", f.Op);
        Assert.Equal(6, f.Line);
        Assert.Equal("0", f.Expected);
        Assert.Equal("1", f.Actual);
        Assert.Equal(1, r.ExitCode);
    }

    [Fact]
    public void SharedFileMappingIsSeenByTheChild()
    {
        var r = Run("""
            {
              "machine": { "designs": "DeviceAddressSpace" },
              "processes": ["parent"],
              "files": [ { "name": "f", "size": "8KiB" } ],
              "steps": [
                { "op": "mmap", "name": "m", "length": "8KiB", "flags": "Shared", "file": "f" },
                { "op": "fork", "child": "kid" },
                { "op": "fill", "process": "kid", "at": "m", "pattern": "index", "start": 9 },
                { "op": "verify", "process": "parent", "at": "m", "pattern": "index", "start": 9 },
                { "op": "exit", "process": "kid" },
                { "op": "write", "process": "kid", "at": "m", "int": 1 }
              ]
            }
            """);
        var f = Assert.Single(r.Designs).Failure!;
        Assert.Equal("6", f.Step);
        Assert.Contains("process \"kid\" has exited", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SnapshotMismatchShowsProtectionNames()
    {
        var r = Run("""
            {
              "machine": { "designs": "DeviceAddressSpace" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": 4096 },
                { "op": "write", "at": "buf", "int": 1 },
                { "op": "dmirror.open", "unit": 0, "handle": "d" },
                { "op": "dmirror.snapshot", "handle": "d", "at": "buf", "pages": 1, "expect": { "snapshot": ["Read"] } }
              ]
            }
            """);
        var f = Assert.Single(r.Designs).Failure!;
        Assert.Equal("expectation", f.Kind);
        Assert.Equal("Read (0x01)", f.Expected);
        Assert.Equal("Write (0x02)", f.Actual);
    }

    [Fact]
    public void InvalidJsonHasLineAndColumn()
    {
        var e = Assert.Throws<ScenarioFileException>(() => ScenarioFile.Parse("{\n  \"steps\": [\n    { \"op\": 'mmap' }\n  ]\n}"u8.ToArray(), "x.json"));
        Assert.Equal("x.json", e.File);
        Assert.Equal(3, e.Line);
        Assert.Equal(13, e.Column);
        Assert.StartsWith("invalid JSON", e.Problem, StringComparison.Ordinal);
    }
}

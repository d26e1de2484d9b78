using System.Text.Json;

namespace HmmSim.Cli.Tests;

/// <summary>Each kind of bad scenario file: exit 2 and one message naming the file, the line (and
/// column) and what is wrong; no stack trace.</summary>
public class BadScenarioTests
{
    private static string AssertBad(string json, int line, string problem, int? column = null)
    {
        string path = Cli.TempScenario(json);
        var (exit, output, error) = Cli.Run("run", path);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        string message = lines[0];
        string where = column is { } c ? $"{path}:{line}:{c}: " : $"{path}:{line}:";
        Assert.StartsWith("hmmsim run: " + where, message, StringComparison.Ordinal);
        Assert.Contains(problem, message, StringComparison.Ordinal);
        Assert.DoesNotContain(" at HmmSim", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", error, StringComparison.Ordinal);
        return message;
    }

    [Fact]
    public void InvalidJson() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf" "length": 4096 }
          ]
        }
        """, 3, "invalid JSON");

    [Fact]
    public void UnknownOperation() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": 4096 },
            { "op": "migrate", "at": "buf" }
          ]
        }
        """, 4, "step 2: unknown operation \"migrate\"", column: 13);

    [Fact]
    public void BadNumber() => AssertBad("""
        {
          "machine": {
            "ramBytes": "8 GB"
          },
          "steps": []
        }
        """, 3, "bad number \"8 GB\"", column: 17);

    [Fact]
    public void MissingField() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf" }
          ]
        }
        """, 3, "step 1 (mmap): missing field \"length\"", column: 5);

    [Fact]
    public void MissingSteps() => AssertBad("""
        {
          "machine": { "designs": "DeviceAddressSpace" }
        }
        """, 1, "missing field \"steps\"", column: 1);

    [Fact]
    public void UnalignedAddress() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": "64KiB" },
            { "op": "mprotect", "at": "buf+0x800", "length": 4096, "prot": "Read" }
          ]
        }
        """, 4, "step 2 (mprotect): address buf+0x800 is not page-aligned", column: 31);

    [Fact]
    public void OutOfRangeAddress() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": "64KiB" },
            { "op": "dmirror.open", "unit": 0, "handle": "gpu" },
            { "op": "dmirror.read", "handle": "gpu", "at": "buf+60KiB", "pages": 2 }
          ]
        }
        """, 5, "out of range: mapping \"buf\" is 0x10000 bytes long", column: 52);

    [Fact]
    public void OutOfRangeAbsoluteAddress() => AssertBad("""
        {
          "steps": [
            { "op": "munmap", "at": "2^47", "length": 4096 }
          ]
        }
        """, 3, "out of range: user addresses end at 0x800000000000");

    [Fact]
    public void UnknownUnit() => AssertBad("""
        {
          "steps": [
            { "op": "dmirror.open", "unit": 7, "handle": "gpu" }
          ]
        }
        """, 3, "unknown unit 7", column: 37);

    [Fact]
    public void UnknownName() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": 4096 },
            { "op": "fill", "at": "bfu+4", "length": 8, "pattern": "index" }
          ]
        }
        """, 4, "unknown name \"bfu\"", column: 27);

    [Fact]
    public void UnknownHandle() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": 4096 },
            { "op": "dmirror.migrate_to_sys", "handle": "gpu", "at": "buf", "pages": 1 }
          ]
        }
        """, 4, "unknown handle \"gpu\"");

    [Fact]
    public void UnknownField() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "lenght": 4096 }
          ]
        }
        """, 3, "unknown field \"lenght\"", column: 36);

    [Fact]
    public void UnknownEnumValue() => AssertBad("""
        {
          "machine": { "designs": ["DeviceAddressSpace", "Magic"] },
          "steps": []
        }
        """, 2, "unknown designs \"Magic\"");

    [Fact]
    public void ExpectationThatDoesNotApply() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": 4096, "expect": { "cpages": 1 } }
          ]
        }
        """, 3, "expect.cpages applies only to dmirror commands");

    [Fact]
    public void DuplicateField() => AssertBad("""
        {
          "steps": [
            { "op": "mmap", "name": "buf", "length": 4096, "length": 8192 }
          ]
        }
        """, 3, "field \"length\" is given twice", column: 52);

    [Fact]
    public void BadMachine() => AssertBad("""
        {
          "machine": {
            "physicalAddressBits": 43,
            "pciWindows": [ { "start": "8GiB", "length": "2^43" } ]
          },
          "steps": []
        }
        """, 4, "PCI window [0x200000000, 0x80200000000) is out of range");

    [Fact]
    public void MissingFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hmmsim-no-such-{Guid.NewGuid():N}.json");
        var (exit, _, error) = Cli.Run("run", path);
        Assert.Equal(2, exit);
        Assert.Contains(path, error, StringComparison.Ordinal);
        Assert.Contains("no such file", error, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonErrorOutput()
    {
        string path = Cli.TempScenario("""
            { "steps": [ { "op": "dance" } ] }
            """);
        var (exit, output, _) = Cli.Run("run", path, "--json");
        Assert.Equal(2, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(path, doc.RootElement.GetProperty("file").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("exitCode").GetInt32());
        var e = doc.RootElement.GetProperty("error");
        Assert.Equal(1, e.GetProperty("line").GetInt32());
        Assert.Equal(22, e.GetProperty("column").GetInt32());
        Assert.Contains("unknown operation \"dance\"", e.GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}

using System.Text.RegularExpressions;

namespace HmmSim.Cli.Tests;

/// <summary>`--trace FILE` on run and selftest: the file is ftrace text that loads back line by line,
/// with the events the scenario's operations must produce.</summary>
public partial class TraceCommandTests
{
    [GeneratedRegex(@"^\s*(?<comm>.+?)-(?<pid>\d+)\s+\[(?<cpu>\d{3})\]\s+(?<flags>[.dNnXzHhs]{4,5})\s+(?<ts>\d+\.\d{6}): (?<event>\w+): (?<fields>.*)$")]
    private static partial Regex Line();

    private static List<(string Event, Dictionary<string, string> Fields)> Load(string path)
    {
        var lines = File.ReadAllLines(path);
        Assert.Equal("# tracer: nop", lines[0]);
        var events = new List<(string, Dictionary<string, string>)>();
        foreach (var line in lines.Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            var m = Line().Match(line);
            Assert.True(m.Success, $"not an ftrace line: '{line}'");
            events.Add((m.Groups["event"].Value, m.Groups["fields"].Value.Split(' ').Select(f => f.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : "")));
        }
        return events;
    }

    private static string TempPath() => Path.Combine(Path.GetTempPath(), $"hmmsim-trace-{Guid.NewGuid():N}.txt");

    [Fact]
    public void RunTracesTheScenariosMigrationInBothDesigns()
    {
        var path = TempPath();
        try
        {
            var (exit, _, err) = Cli.Run("run", Path.Combine(Cli.ExamplesDir, "selftest-migrate.json"), "--trace", path, "--quiet");
            Assert.Equal(0, exit);
            var events = Load(path);
            Assert.Contains($"events written to {path}", err, StringComparison.Ordinal);
            // selftest-migrate.json migrates 1024 pages (4 MiB) to unit 0, once per design it runs under.
            var boots = events.Count(e => e.Event == "hmmsim_machine_boot");
            Assert.True(boots >= 1);
            // Per boot, the driver migrates the mapping in chunks: contiguous migrate_vma_setup ranges that
            // add up to the 1024 pages, each collecting (cpages) every page it asked for.
            int boot = -1;
            var perBoot = new List<List<Dictionary<string, string>>>();
            foreach (var (name, fields) in events)
            {
                if (name == "hmmsim_machine_boot")
                    perBoot.Add([]);
                else if (name is "migrate_vma_setup" or "migrate_vma_unmap")
                    perBoot[^1].Add(fields);
            }
            Assert.Equal(boots, perBoot.Count);
            foreach (var migration in perBoot)
            {
                boot++;
                ulong pages = 0, next = 0;
                for (int i = 0; pages < 1024; i += 2)
                {
                    var (setup, unmap) = (migration[i], migration[i + 1]);
                    ulong start = Convert.ToUInt64(setup["start"], 16);
                    Assert.True(next == 0 || start == next, $"boot {boot}: chunk at {setup["start"]} is not contiguous");
                    next = Convert.ToUInt64(setup["end"], 16);
                    Assert.Equal(setup["nr_pages"], unmap["cpages"]);
                    pages += ulong.Parse(setup["nr_pages"]);
                }
                Assert.Equal(1024UL, pages);
            }
            Assert.Contains(events, e => e.Event == "page_fault_user");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SelftestTracesOneBootPerCase()
    {
        var path = TempPath();
        try
        {
            var (exit, output, _) = Cli.Run("selftest", "--design", "DeviceAddressSpace", "--filter", "migrate_fault", "--trace", path);
            Assert.Equal(0, exit);
            int cases = output.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal));
            var events = Load(path);
            Assert.Equal(cases, events.Count(e => e.Event == "hmmsim_machine_boot"));
            Assert.Contains(events, e => e.Event == "migrate_to_ram");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AnUnwritableTraceFileIsBadInput()
    {
        var (exit, _, err) = Cli.Run("selftest", "--filter", "open_close", "--trace", Path.GetTempPath());
        Assert.Equal(2, exit);
        Assert.Contains("is a directory", err, StringComparison.Ordinal);
    }
}

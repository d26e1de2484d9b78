using System.Text.RegularExpressions;

namespace HmmSim.Tests.Trace;

/// <summary>Machine.StartTracing: the kernel's tracepoints in ftrace's text format, loaded back line
/// by line the way a systrace importer reads them.</summary>
public partial class TraceTests
{
    private const ulong Npages = 16;
    private const ulong Size = Npages * 4096;

    // TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: FIELDS, as Perfetto's systrace line parser takes it.
    [GeneratedRegex(@"^\s*(?<comm>.+?)-(?<pid>\d+)\s+\[(?<cpu>\d{3})\]\s+(?<flags>[.dNnXzHhs]{4,5})\s+(?<ts>\d+\.\d{6}): (?<event>\w+): (?<fields>.*)$")]
    private static partial Regex Line();

    internal sealed record TraceEvent(int Pid, double Timestamp, string Name, IReadOnlyDictionary<string, string> Fields);

    /// <summary>Every non-comment line must parse; fields are key=value pairs.</summary>
    internal static List<TraceEvent> Parse(string text)
    {
        var events = new List<TraceEvent>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var m = Line().Match(line);
            Assert.True(m.Success, $"not an ftrace line: '{line}'");
            var fields = m.Groups["fields"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(f => f.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : "");
            events.Add(new TraceEvent(int.Parse(m.Groups["pid"].Value), double.Parse(m.Groups["ts"].Value, System.Globalization.CultureInfo.InvariantCulture), m.Groups["event"].Value, fields));
        }
        return events;
    }

    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    [Theory]
    [MemberData(nameof(Designs))]
    public void MigrationFaultsAndInvalidationsAreTracedWithTheirCounts(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var gpu = p.OpenDmirror(0);
        Assert.Equal(Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr));
        var writer = new StringWriter();
        m.StartTracing(writer);
        p.Write(addr, new byte[Size].Select((_, i) => (byte)i).ToArray());
        Assert.Equal(Errno.None, gpu.MigrateToDevice(addr, Npages, new byte[Size]).Error);
        _ = p.ReadInt32(addr + 4096);   // one page comes back through migrate_to_ram
        long count = m.StopTracing();

        var text = writer.ToString();
        Assert.StartsWith("# tracer: nop\n", text, StringComparison.Ordinal);
        var events = Parse(text);
        Assert.Equal(count, events.Count);
        Assert.All(events, e => Assert.Equal(p.Pid, e.Pid));
        Assert.True(events.Zip(events.Skip(1)).All(x => x.First.Timestamp <= x.Second.Timestamp), "timestamps go backwards");

        // The writes fault every page in; the order of the migration's tracepoints is the kernel's.
        var faults = events.Where(e => e.Name == "page_fault_user").ToList();
        Assert.Contains(faults, f => f.Fields["address"] == $"0x{addr:x}" && f.Fields["error_code"] == "0x6");
        var names = events.Select(e => e.Name).Where(n => n.StartsWith("migrate_vma", StringComparison.Ordinal)).ToList();
        Assert.Equal(["migrate_vma_setup", "migrate_vma_collect", "migrate_vma_unmap", "migrate_vma_pages", "migrate_vma_finalize"], names.Take(5));
        var setup = events.First(e => e.Name == "migrate_vma_setup");
        Assert.Equal($"0x{addr:x}", setup.Fields["start"]);
        Assert.Equal($"0x{addr + Size:x}", setup.Fields["end"]);
        Assert.Equal($"{Npages}", setup.Fields["nr_pages"]);
        Assert.Equal($"{Npages}", events.First(e => e.Name == "migrate_vma_unmap").Fields["cpages"]);
        var inval = events.First(e => e.Name == "mmu_notifier_invalidate_range_start");
        Assert.Equal("MMU_NOTIFY_MIGRATE", inval.Fields["event"]);
        Assert.Equal("hmm_dmirror0", inval.Fields["owner"]);

        // The CPU read of a device-private page: a fault, then migrate_to_ram at the same address.
        var toRam = Assert.Single(events, e => e.Name == "migrate_to_ram");
        Assert.Equal($"0x{addr + 4096:x}", toRam.Fields["address"]);
        Assert.Equal("hmm_dmirror0", toRam.Fields["owner"]);
        // The redesign names the page by its device-private offset; today's design by its PFN.
        Assert.True(toRam.Fields.ContainsKey(design == DevicePrivateDesign.DeviceAddressSpace ? "offset" : "pfn"));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void HmmRangeFaultAndP2pAliasDecisionsAreTraced(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var owner = p.OpenDmirror(0);
        using var importer = p.OpenDmirror(1);
        Assert.Equal(Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr));
        p.Write(addr, new byte[Size]);
        Assert.Equal(Errno.None, owner.MigrateToDevice(addr, Npages, new byte[Size]).Error);
        Assert.Equal(Errno.None, importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var writer = new StringWriter();
        m.StartTracing(writer);
        Assert.Equal(Errno.None, importer.Read(addr, Npages, new byte[Size]).Error);
        m.StopTracing();

        var events = Parse(writer.ToString());
        var fault = Assert.Single(events, e => e.Name == "hmm_range_fault");
        Assert.Equal($"{Npages}", fault.Fields["npages"]);
        Assert.Equal("hmm_dmirror1", fault.Fields["owner"]);
        Assert.Equal("0", fault.Fields["ret"]);
        var aliases = events.Where(e => e.Name == "hmm_p2p_alias").ToList();
        Assert.Equal((int)Npages, aliases.Count);
        Assert.All(aliases, a => Assert.StartsWith("0x", a.Fields["alias_pfn"], StringComparison.Ordinal));
        Assert.All(aliases, a => Assert.Equal(("hmm_dmirror0", "hmm_dmirror1", "0"), (a.Fields["owner"], a.Fields["requester"], a.Fields["ret"])));
        Assert.DoesNotContain(events, e => e.Name == "migrate_to_ram");
    }

    [Fact]
    public void NothingIsRecordedWhileTracingIsOff()
    {
        using var m = new Machine();
        var p = m.CreateProcess();
        var writer = new StringWriter();
        m.StartTracing(writer);
        Assert.Equal(0, m.StopTracing());
        int headerLength = writer.ToString().Length;
        Assert.Equal(Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr));
        p.WriteInt32(addr, 1);
        Assert.Equal(headerLength, writer.ToString().Length);
        Assert.Equal(0, m.StopTracing());
        Assert.Throws<ArgumentNullException>(() => m.StartTracing(null!));
    }
}

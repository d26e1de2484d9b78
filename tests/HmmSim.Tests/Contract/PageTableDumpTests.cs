namespace HmmSim.Tests.Contract;

/// <summary>The contract's internal inspection API the CLI's "dump" op and expect.vmstat rest on.</summary>
public class PageTableDumpTests
{
    private static Machine NewMachine() => new(new MachineConfig
    {
        RamBytes = 256UL << 20,
        PciWindows = [],
        DevicePrivateDesign = DevicePrivateDesign.DeviceAddressSpace,
        Seed = 1,
    });

    [Fact]
    public void VmStatNamesAreExactlyTheCountersAMachineReports()
    {
        using var machine = NewMachine();
        Assert.Equal(machine.VmStat.Keys.Order(StringComparer.Ordinal), Machine.VmStatNames.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void DumpAgreesWithPagemapOnEveryPage()
    {
        using var machine = NewMachine();
        using var p = machine.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 4 * 4096, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        p.WriteInt32(a, 1);
        p.WriteInt32(a + 2 * 4096, 1);
        Assert.Equal(Errno.None, p.Mprotect(a + 2 * 4096, 4096, Prot.Read));
        var dump = p.DumpPageTables(a, 4 * 4096);
        Assert.Equal(4, dump.Count);
        for (int i = 0; i < 4; i++)
        {
            var pm = p.Pagemap(a + (ulong)i * 4096);
            Assert.Equal(pm.Present, dump[i].Present);
            Assert.Equal(pm.Pfn, dump[i].Pfn);
        }
        Assert.Contains("write", dump[0].Flags);
        Assert.Contains("dirty", dump[0].Flags);
        Assert.DoesNotContain("write", dump[2].Flags);
        Assert.Equal("none", dump[1].Kind);
        Assert.Throws<ArgumentException>(() => p.DumpPageTables(a + 1, 4096));
    }
}

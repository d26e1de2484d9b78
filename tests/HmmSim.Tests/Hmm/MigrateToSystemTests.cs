namespace HmmSim.Tests.Hmm;

public class MigrateToSystemTests
{
    private static (Machine M, Process P, Dmirror Dev, ulong Addr) Setup(DevicePrivateDesign design, ulong size, bool thp)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var dev = p.OpenDmirror(0);
        ulong pmd = 2UL << 20;
        Assert.Equal(Errno.None, p.Mmap(0, size + pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + pmd - 1) & ~(pmd - 1);
        Assert.Equal(Errno.None, p.Madvise(a, size, thp ? Advice.HugePage : Advice.NoHugePage));
        for (ulong off = 0; off < size; off += 4096)
            p.WriteInt32(a + off, (int)(off >> 12) + 1);
        var mirror = new byte[size];
        Assert.Equal(new DmirrorResult(Errno.None, size >> 12, 0), dev.MigrateToDevice(a, size >> 12, mirror));
        return (m, p, dev, a);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void MigrateToSystemCountsEverySmallPage(DevicePrivateDesign design)
    {
        var (m, p, dev, a) = Setup(design, 512UL << 10, thp: false);
        using (m)
        using (dev)
        {
            Assert.Equal(new DmirrorResult(Errno.None, 128, 0), dev.MigrateToSystem(a, 128));
            for (ulong i = 0; i < 128; i++)
            {
                Assert.NotEqual(0UL, p.PagemapEntry(a + i * 4096) >> 63);
                Assert.Equal((int)i + 1, p.ReadInt32(a + i * 4096));
            }
        }
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void MigrateToSystemCountsADeviceThpAsOneCompoundEntry(DevicePrivateDesign design)
    {
        // dmirror_successful_migrated_pages counts source entries with VALID|MIGRATE: a 2 MiB device
        // folio migrates as one compound entry, so cpages is 1, not 512.
        var (m, p, dev, a) = Setup(design, 2UL << 20, thp: true);
        using (m)
        using (dev)
        {
            Assert.Equal(new DmirrorResult(Errno.None, 1, 0), dev.MigrateToSystem(a, 512));
            Assert.Equal(1, m.VmStat["nr_anon_transparent_hugepages"]);
            for (ulong i = 0; i < 512; i += 97)
                Assert.Equal((int)i + 1, p.ReadInt32(a + i * 4096));
        }
    }
}

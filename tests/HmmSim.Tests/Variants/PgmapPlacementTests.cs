namespace HmmSim.Kernel.Tests.Variants;

/// <summary>PgmapPlacement.PageUnion: before seed 003 page->pgmap shared its word with compound_head, so
/// making a compound device folio (a device-private THP) overwrites the pgmap of every tail page. The
/// first reader of a tail's pgmap is dmirror_mkentry's is_device_private_page during a snapshot.</summary>
public class PgmapPlacementTests
{
    private const ulong PmdSize = 2UL << 20;
    private const ulong Npages = PmdSize >> 12;
    private const byte LocalThp = (byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write | DmirrorProt.Pmd);

    /// <summary>A written THP migrated to unit 0 as one device-private THP (zone_device_folio_init, order 9).</summary>
    private static (Machine M, Process P, Dmirror Dev, ulong A) DeviceThp(HmmSim.DevicePrivateDesign design, HmmSim.PgmapPlacement placement, bool checks)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = checks, Variants = new() { PgmapPlacement = placement } });
        var p = m.CreateProcess();
        var dev = p.OpenDmirror(0);
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, 2 * PmdSize, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + PmdSize - 1) & ~(PmdSize - 1);
        Assert.Equal(HmmSim.Errno.None, p.Madvise(a, PmdSize, HmmSim.Advice.HugePage));
        for (ulong i = 0; i < Npages; i++)
            p.WriteInt32(a + i * 4096, (int)i + 1);
        Assert.Equal(new DmirrorResult(HmmSim.Errno.None, Npages, 0), dev.MigrateToDevice(a, Npages, new byte[PmdSize]));
        return (m, p, dev, a);
    }

    private static bool OurCheck(string line) => line.Contains("HmmSim: page_pgmap", StringComparison.Ordinal) && line.Contains("compound_head", StringComparison.Ordinal);

    [Theory]
    [InlineData(HmmSim.DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(HmmSim.DevicePrivateDesign.DeviceAddressSpace)]
    public void WithPgmapInTheFolioEveryPageOfADeviceThpSnapshotsAsLocal(HmmSim.DevicePrivateDesign design)
    {
        var (m, p, dev, a) = DeviceThp(design, HmmSim.PgmapPlacement.Folio, checks: true);
        using (m)
        using (dev)
        {
            var prot = new byte[Npages];
            Assert.Equal(HmmSim.Errno.None, dev.Snapshot(a, Npages, prot).Error);
            Assert.All(prot, b => Assert.Equal(LocalThp, b));
            Assert.Equal(6, p.ReadInt32(a + 5 * 4096));
            Assert.DoesNotContain(m.Dmesg(), OurCheck);
        }
    }

    [Fact]
    public void InTodaysDesignATailPageOfADeviceThpSnapshotsAsNotDeviceMemory()
    {
        var (m, _, dev, a) = DeviceThp(HmmSim.DevicePrivateDesign.PhysicalAddressSpace, HmmSim.PgmapPlacement.PageUnion, checks: false);
        using (m)
        using (dev)
        {
            var prot = new byte[Npages];
            Assert.Equal(HmmSim.Errno.None, dev.Snapshot(a, Npages, prot).Error);
            // The head's pgmap word is intact; every tail's holds compound_head, so
            // is_device_private_page misreads it and dmirror_mkentry reports plain memory.
            Assert.Equal(LocalThp, prot[0]);
            Assert.All(prot.AsSpan(1).ToArray(), b => Assert.Equal((byte)(DmirrorProt.Write | DmirrorProt.Pmd), b));
            Assert.Contains(m.Dmesg(), OurCheck);
        }
    }

    [Fact]
    public void InTheRedesignTheMisreadTailIsTakenForRamAndAskedForItsPfn()
    {
        var (m, _, dev, a) = DeviceThp(HmmSim.DevicePrivateDesign.DeviceAddressSpace, HmmSim.PgmapPlacement.PageUnion, checks: false);
        using (m)
        using (dev)
        {
            // dmirror_mkentry falls through to is_zero_pfn(page_to_pfn(tail)): a device-private page has no PFN.
            var e = Assert.Throws<KernelBugException>(() => dev.Snapshot(a, Npages, new byte[Npages]));
            Assert.Contains("page_to_pfn on device-private page", e.Message, StringComparison.Ordinal);
            Assert.Contains(m.Dmesg(), OurCheck);
        }
    }

    [Theory]
    [InlineData(HmmSim.DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(HmmSim.DevicePrivateDesign.DeviceAddressSpace)]
    public void TheCheckerStopsAtTheFirstReadOfAnOverwrittenPgmap(HmmSim.DevicePrivateDesign design)
    {
        var (m, _, dev, a) = DeviceThp(design, HmmSim.PgmapPlacement.PageUnion, checks: true);
        using (m)
        using (dev)
        {
            var e = Assert.Throws<KernelBugException>(() => dev.Snapshot(a, Npages, new byte[Npages]));
            Assert.Contains("compound_head", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void OrderZeroDevicePagesNeverLoseTheirPgmap()
    {
        using var m = new Machine(new MachineConfig { Variants = new() { PgmapPlacement = HmmSim.PgmapPlacement.PageUnion } });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, 16 * 4096, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong a));
        for (ulong i = 0; i < 16; i++)
            p.WriteInt32(a + i * 4096, (int)i + 7);
        Assert.Equal(HmmSim.Errno.None, dev.MigrateToDevice(a, 16, new byte[16 * 4096]).Error);
        var prot = new byte[16];
        Assert.Equal(HmmSim.Errno.None, dev.Snapshot(a, 16, prot).Error);
        Assert.All(prot, b => Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write), b));
        Assert.Equal(10, p.ReadInt32(a + 3 * 4096));
        Assert.DoesNotContain(m.Dmesg(), OurCheck);
    }
}

namespace HmmSim.Tests.Hmm;

/// <summary>MIGRATE_TO_DEV and MIGRATE_TO_SYS allocate a window's small pages together before copying
/// (dmirror_devmem_alloc_page and folio_alloc in bulk): the pages migrate exactly as one-by-one
/// allocation would have them, across a device chunk running out and when RAM runs out.</summary>
public class MigrateWindowBatchTests
{
    private const ulong Mib = 1UL << 20;

    private static (ulong Addr, byte[] Buf) MapAndFill(Process p, ulong size)
    {
        Assert.Equal(Errno.None, p.Mmap(0, size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        Assert.Equal(Errno.None, p.Madvise(a, size, Advice.NoHugePage));
        var buf = new byte[size];
        for (int i = 0; i < buf.Length; i += 4096)
        {
            buf[i] = (byte)(i >> 12);
            buf[i + 1] = (byte)(i >> 20);
            buf[i + 4095] = 0x5a;
        }
        p.Write(a, buf);
        return (a, buf);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void SmallPagesPastTheFirstDeviceChunkAllMigrateBothWays(DevicePrivateDesign design)
    {
        // The device's first chunk holds 256 MiB: a window straddling its end takes part of its pages off
        // the free list and the rest from a chunk added for it.
        ulong size = 258 * Mib;
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        var (a, buf) = MapAndFill(p, size);
        var mirror = new byte[size];
        var r = d.MigrateToDevice(a, size >> 12, mirror);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(size >> 12, r.CPages);
        Assert.True(buf.AsSpan().SequenceEqual(mirror));
        r = d.MigrateToSystem(a, size >> 12);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(size >> 12, r.CPages);
        var back = new byte[size];
        p.Read(a, back);
        Assert.True(buf.AsSpan().SequenceEqual(back));
        Assert.Equal(Errno.None, p.Munmap(a, size));
    }

    [Fact]
    public void WhenRamRunsOutEachWindowMigratesItsFirstPagesAndNothingLeaks()
    {
        var m = new Machine(new MachineConfig { RamBytes = 64 * Mib, HugetlbPages = 0, CheckInvariants = true });
        var p = m.CreateProcess();
        var d = p.OpenDmirror(0);
        ulong size = 8 * Mib;
        var (a, buf) = MapAndFill(p, size);
        // Another mapping takes all but about 200 free pages, fewer than a window (512) needs for its
        // backing pages; each window frees its source pages when it finishes, for the next one.
        ulong hogPages = (ulong)m.Kernel.Buddy.NrFreePages - 200;
        Assert.Equal(Errno.None, p.Mmap(0, hogPages << 12, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong hog));
        Assert.Equal(Errno.None, p.Madvise(hog, hogPages << 12, Advice.NoHugePage));
        for (ulong off = 0; off < hogPages << 12; off += 4096)
            p.WriteInt32(hog + off, 1);
        Assert.InRange(m.Kernel.Buddy.NrFreePages, 1, 511);
        // Not every page moved, so the verification read of the moved range (dmirror_do_read) finds a
        // page missing from the mirror: ENOENT, as in the kernel.
        var mirror = new byte[size];
        Assert.Equal(Errno.ENOENT, d.MigrateToDevice(a, size >> 12, mirror).Error);
        var snap = new byte[size >> 12];
        Assert.Equal(Errno.None, d.Snapshot(a, size >> 12, snap).Error);
        // In every 2 MiB window the pages that moved are its first ones (allocation stops where RAM runs
        // out, as page-by-page allocation does).
        for (int w = 0; w < (int)(size >> 21); w++)
        {
            int k = 0;
            while (k < 512 && (snap[(w * 512) + k] & (byte)DmirrorProt.DevPrivateLocal) != 0)
                k++;
            Assert.InRange(k, 1, 511);
            for (int rest = k; rest < 512; rest++)
                Assert.Equal(0, snap[(w * 512) + rest] & (byte)DmirrorProt.DevPrivateLocal);
        }
        // And back: every byte as written, wherever it was.
        Assert.Equal(Errno.None, d.MigrateToSystem(a, size >> 12).Error);
        var back = new byte[size];
        p.Read(a, back);
        Assert.True(buf.AsSpan().SequenceEqual(back));
        Assert.Equal(Errno.None, p.Munmap(hog, hogPages << 12));
        Assert.Equal(Errno.None, p.Munmap(a, size));
        d.Dispose();
        p.Dispose();
        m.Dispose();   // the teardown check: every page allocated for the migrations came back
    }
}

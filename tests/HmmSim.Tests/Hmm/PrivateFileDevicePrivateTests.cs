using System.Runtime.InteropServices;

namespace HmmSim.Tests.Hmm;

/// <summary>Device-private folios in a MAP_PRIVATE file mapping. The COW copies of such a mapping are
/// anonymous folios in a file-backed VMA, and migrate_vma moves them to device-private memory
/// (hmm-tests.c migrate_file_private; commit be3f38d05cc5 made zap_nonpresent_ptes test the folio,
/// not the VMA). CPU faults, fork, mprotect, munmap and exit must all handle them.</summary>
public class PrivateFileDevicePrivateTests
{
    private const ulong Pages = 64;
    private const ulong Size = Pages << 12;
    private const byte DevWrite = (byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write);
    private const byte DevRead = (byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Read);

    private sealed class Setup : IDisposable
    {
        public required Machine M { get; init; }
        public required Process P { get; init; }
        public required Dmirror Dev { get; init; }
        public required ShmemFile File { get; init; }
        public required ulong Addr { get; init; }
        /// <summary>Device pages in use before the migration.</summary>
        public required long Baseline { get; init; }

        public long DevicePagesInUse => Dev.Device.Calloc - Dev.Device.Cfree - Baseline;

        public void Dispose()
        {
            Dev.Dispose();
            File.Dispose();
            M.Dispose();
        }
    }

    private static int FileValue(long i) => (int)(0x5a000000 + i);

    private static byte[] Ints(Func<long, int> f)
    {
        var b = new byte[Size];
        var ints = MemoryMarshal.Cast<byte, int>(b.AsSpan());
        for (int i = 0; i < ints.Length; i++)
            ints[i] = f(i);
        return b;
    }

    private static void AssertInts(Process p, ulong addr, Func<long, int> expected)
    {
        var b = new byte[Size];
        p.Read(addr, b);
        Assert.Equal(Ints(expected), b);
    }

    /// <summary>A file holding FileValue(i), mapped MAP_PRIVATE, every int rewritten to i by the CPU
    /// (one COW fault a page) and then migrated to dmirror unit 0.</summary>
    private static Setup MigratedPrivateFileMapping(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var dev = p.OpenDmirror(0);
        var file = m.CreateFile(Size);
        Assert.Equal(Errno.None, file.Pwrite(Ints(FileValue), 0, out _));
        Assert.Equal(Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private, out ulong a, file));
        p.Write(a, Ints(i => (int)i));
        long baseline = dev.Device.Calloc - dev.Device.Cfree;
        Assert.Equal(new DmirrorResult(Errno.None, Pages, 0), dev.MigrateToDevice(a, Pages, new byte[Size]));
        return new Setup { M = m, P = p, Dev = dev, File = file, Addr = a, Baseline = baseline };
    }

    private static byte[] Snapshot(Setup s)
    {
        var prot = new byte[Pages];
        Assert.Equal(Errno.None, s.Dev.Snapshot(s.Addr, Pages, prot).Error);
        return prot;
    }

    private static void AssertFileUntouched(Setup s)
    {
        var b = new byte[Size];
        Assert.Equal(Errno.None, s.File.Pread(b, 0, out ulong read));
        Assert.Equal(Size, read);
        Assert.Equal(Ints(FileValue), b);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void CowPagesOfAPrivateFileMappingMigrateAndFaultBackWithTheirData(DevicePrivateDesign design)
    {
        using var s = MigratedPrivateFileMapping(design);
        Assert.All(Snapshot(s), b => Assert.Equal(DevWrite, b));
        Assert.Equal((long)Pages, s.DevicePagesInUse);

        AssertInts(s.P, s.Addr, i => (int)i);

        // Back in system memory as anonymous pages of the file-backed VMA; the file never saw the writes.
        for (ulong i = 0; i < Pages; i++)
        {
            ulong e = s.P.PagemapEntry(s.Addr + (i << 12));
            Assert.True((e >> 63) != 0, $"page {i} is not present after the fault");
            Assert.True((e & (1UL << 61)) == 0, $"page {i} is mapped from the file, not its anonymous copy");
        }
        Assert.Equal(0L, s.DevicePagesInUse);
        AssertFileUntouched(s);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void MunmapOfAPrivateFileMappingFreesItsDevicePages(DevicePrivateDesign design)
    {
        using var s = MigratedPrivateFileMapping(design);
        Assert.Equal(Errno.None, s.P.Munmap(s.Addr, Size));
        Assert.Equal(0L, s.DevicePagesInUse);
        AssertFileUntouched(s);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void ForkSharesTheDevicePagesOfAPrivateFileMappingCopyOnWrite(DevicePrivateDesign design)
    {
        using var s = MigratedPrivateFileMapping(design);
        var child = s.P.Fork();

        // copy_nonpresent_pte: both mms map the same device pages, now read-only in the parent too.
        Assert.All(Snapshot(s), b => Assert.Equal(DevRead, b));
        Assert.Equal((long)Pages, s.DevicePagesInUse);

        // The child's read brings the shared pages back for both; its write then copies them.
        AssertInts(child, s.Addr, i => (int)i);
        Assert.Equal(0L, s.DevicePagesInUse);
        child.Write(s.Addr, Ints(i => (int)-i));
        AssertInts(child, s.Addr, i => (int)-i);
        AssertInts(s.P, s.Addr, i => (int)i);

        child.Dispose();
        AssertInts(s.P, s.Addr, i => (int)i);
        AssertFileUntouched(s);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void ExitOfAForkedChildLeavesTheParentsDevicePagesOfAPrivateFileMapping(DevicePrivateDesign design)
    {
        using var s = MigratedPrivateFileMapping(design);
        var child = s.P.Fork();

        // The child exits with the device-private entries still mapped: zap drops only its references.
        child.Dispose();
        Assert.Equal((long)Pages, s.DevicePagesInUse);
        Assert.All(Snapshot(s), b => Assert.Equal(DevRead, b));

        AssertInts(s.P, s.Addr, i => (int)i);
        Assert.Equal(0L, s.DevicePagesInUse);
        AssertFileUntouched(s);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void MprotectDowngradesDevicePagesOfAPrivateFileMappingAndExitFreesThem(DevicePrivateDesign design)
    {
        using var s = MigratedPrivateFileMapping(design);
        Assert.Equal(Errno.None, s.P.Mprotect(s.Addr, Size, Prot.Read));
        Assert.All(Snapshot(s), b => Assert.Equal(DevRead, b));

        s.P.Dispose();
        Assert.Equal(0L, s.DevicePagesInUse);
        AssertFileUntouched(s);
    }
}

using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

/// <summary>Single-threaded escapes from the audit "Nothing lost under threads or bad input": each input
/// gets the kernel's answer (or ArgumentException for misuse of the C# API), not an oops, an overflow,
/// an alias or an endless loop.</summary>
public class EscapeTests
{
    public static TheoryData<DevicePrivateDesign> Designs =>
        [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    /// <summary>A machine with one process, its /dev/hmm_dmirror0, and one private page holding <c>value</c>.</summary>
    private sealed class DeviceRig : IDisposable
    {
        public DeviceRig(DevicePrivateDesign design, int value)
        {
            M = Boot(design);
            P = M.CreateProcess();
            Dev = P.OpenDmirror(0);
            A = Map(P, PageSize);
            P.WriteInt32(A, value);
        }

        public Machine M { get; }
        public Process P { get; }
        public Dmirror Dev { get; }
        public ulong A { get; }

        public void Dispose()
        {
            Dev.Dispose();
            P.Dispose();
            M.Dispose();
        }
    }

    private static Machine Boot(DevicePrivateDesign design = DevicePrivateDesign.PhysicalAddressSpace,
        Architecture arch = Architecture.X86_64, ulong ram = 8UL << 30) =>
        new(new MachineConfig { DevicePrivateDesign = design, Architecture = arch, RamBytes = ram });

    // --- an exited process ----------------------------------------------------------------------

    [Fact]
    public void OpenDmirrorOnAnExitedProcessIsObjectDisposed()
    {
        using var m = Boot();
        var p = m.CreateProcess();
        p.Dispose();
        Assert.Throws<ObjectDisposedException>(() => p.OpenDmirror(0));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public async Task DeviceWriteOfANeverFaultedRangeAfterTheProcessExitedIsEfault(DevicePrivateDesign design)
    {
        using var m = Boot(design);
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = Map(p, 4 * PageSize);
        p.Dispose();
        var buf = new byte[4 * PageSize];
        var r = await Task.Run(() => dev.Write(a, 4, buf)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(Errno.EFAULT, r.Error);
    }

    // --- addresses that are not user addresses ---------------------------------------------------

    public static TheoryData<ulong> NonCanonicalX86 => [1UL << 48, 0xffffUL << 48, 1UL << 57];

    [Theory]
    [MemberData(nameof(NonCanonicalX86))]
    public void X86StoreToANonCanonicalAliasIsSigsegvAndLeavesTheMappingAlone(ulong highBits)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a | highBits, 2));
        Assert.Equal(1, p.ReadInt32(a));
    }

    [Theory]
    [MemberData(nameof(NonCanonicalX86))]
    public void X86LoadFromANonCanonicalAliasIsSigsegv(ulong highBits)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a | highBits));
    }

    [Theory]
    [InlineData(1UL << 48)]
    [InlineData(0xffffUL << 48)]
    public void Arm64StoreAboveTheUserRangeIsSigsegv(ulong highBits)
    {
        using var m = Boot(arch: Architecture.Arm64);
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a | highBits, 2));
        Assert.Equal(1, p.ReadInt32(a));
    }

    /// <summary>arm64 runs user space with top-byte-ignore: a tag in bits 63:56 reaches the same memory.</summary>
    [Fact]
    public void Arm64TaggedPointerReachesTheSameMemory()
    {
        using var m = Boot(arch: Architecture.Arm64);
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a + (1UL << 57), 2);
        Assert.Equal(2, p.ReadInt32(a));
    }

    [Fact]
    public void PagemapOfANonCanonicalAliasIsEmpty()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        Assert.NotEqual(0UL, p.PagemapEntry(a));
        Assert.Equal(0UL, p.PagemapEntry(a | 1UL << 48));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceReadAndWriteOfANonCanonicalAliasAreEfault(DevicePrivateDesign design)
    {
        using var rig = new DeviceRig(design, 1);
        var (m, p, dev, a) = (rig.M, rig.P, rig.Dev, rig.A);
        var buf = new byte[PageSize];
        Assert.Equal(Errno.None, dev.Read(a, 1, buf).Error);
        Assert.Equal(Errno.EFAULT, dev.Read(a | 1UL << 48, 1, buf).Error);
        Assert.Equal(Errno.EFAULT, dev.Write(a | 1UL << 48, 1, buf).Error);
        Assert.Equal(1, p.ReadInt32(a));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceSnapshotOfANonCanonicalAliasReportsAnError(DevicePrivateDesign design)
    {
        using var rig = new DeviceRig(design, 1);
        var (m, p, dev, a) = (rig.M, rig.P, rig.Dev, rig.A);
        var prot = new byte[1];
        var r = dev.Snapshot(a | 1UL << 48, 1, prot);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(DmirrorProt.Error, (DmirrorProt)prot[0]);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceMigrationOfANonCanonicalAliasIsEinvalAndMovesNothing(DevicePrivateDesign design)
    {
        using var rig = new DeviceRig(design, 1);
        var (m, p, dev, a) = (rig.M, rig.P, rig.Dev, rig.A);
        var buf = new byte[PageSize];
        Assert.Equal(Errno.EINVAL, dev.MigrateToDevice(a | 1UL << 48, 1, buf).Error);
        Assert.Equal(Errno.EINVAL, dev.MigrateToSystem(a | 1UL << 48, 1).Error);
        Assert.True(Present(p.PagemapEntry(a)));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceExclusiveOfANonCanonicalAliasFailsAndLeavesThePageMapped(DevicePrivateDesign design)
    {
        using var rig = new DeviceRig(design, 1);
        var (m, p, dev, a) = (rig.M, rig.P, rig.Dev, rig.A);
        var buf = new byte[PageSize];
        Assert.Equal(Errno.EFAULT, dev.Exclusive(a | 1UL << 48, 1, buf).Error);
        Assert.Equal(Errno.None, dev.CheckExclusive(a, 1).Error);
        Assert.True(Present(p.PagemapEntry(a)));   // a device-exclusive entry would not be present
    }

    // --- sizes that do not fit one array ---------------------------------------------------------

    /// <summary>2 GiB cannot come back through one bounce array: the migration happens, and the copy to
    /// a buffer shorter than the range fails as copy_to_user would.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void MigrateToDeviceOfTwoGibibytesMigratesAndReportsTheShortBufferAsEfault(DevicePrivateDesign design)
    {
        const ulong pages = (2UL << 30) / PageSize;
        using var m = Boot(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = Map(p, pages * PageSize);
        p.WriteInt32(a, 7);
        p.WriteInt32(a + (pages - 1) * PageSize, 9);
        var r = dev.MigrateToDevice(a, pages, new byte[PageSize]);
        Assert.Equal(Errno.EFAULT, r.Error);
        var prot = new byte[1];
        Assert.Equal(Errno.None, dev.Snapshot(a + (pages - 1) * PageSize, 1, prot).Error);
        Assert.Equal(DmirrorProt.DevPrivateLocal, (DmirrorProt)(prot[0] & 0x30));
        Assert.Equal(9, p.ReadInt32(a + (pages - 1) * PageSize));
        Assert.Equal(7, p.ReadInt32(a));
    }

    // --- shmem files misused ----------------------------------------------------------------------

    [Fact]
    public void MappingAClosedFileIsEbadf()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        var f = m.CreateFile(PageSize);
        f.Dispose();
        Assert.Equal(Errno.EBADF, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _, f));
    }

    [Fact]
    public void MappingAnotherMachinesFileIsArgumentException()
    {
        using var m = Boot();
        using var other = Boot();
        using var p = m.CreateProcess();
        using var f = other.CreateFile(PageSize);
        Assert.Throws<ArgumentException>(() => p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _, f));
    }

    [Fact]
    public void MappingAnotherMachinesDeviceIsArgumentException()
    {
        using var m = Boot();
        using var other = Boot();
        using var p = m.CreateProcess();
        using var q = other.CreateProcess();
        using var dev = q.OpenDmirror(0);
        Assert.Throws<ArgumentException>(() => p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _, dev));
    }

    [Fact]
    public void FileBeyondTheModelsMaximumSizeIsEfbig()
    {
        using var m = Boot();
        Assert.Equal(Errno.EFBIG, Assert.Throws<ErrnoException>(() => m.CreateFile(1UL << 54)).Errno);
    }

    [Fact]
    public void FileOfANegativeLoffTSizeIsEinval()
    {
        using var m = Boot();
        Assert.Equal(Errno.EINVAL, Assert.Throws<ErrnoException>(() => m.CreateFile(ulong.MaxValue)).Errno);
    }

    [Fact]
    public void PwriteFarPastTheEndIsEfbig()
    {
        using var m = Boot();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.EFBIG, f.Pwrite(new byte[8], 1UL << 53, out _));
    }

    [Fact]
    public void MappingAFileFarPastItsEndSucceedsAndFaultsWithSigbus()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out var a, f, 1UL << 53));
        Assert.Throws<BusErrorException>(() => p.ReadInt32(a));
    }

    [Fact]
    public void FileOfADisposedMachineIsObjectDisposed()
    {
        var m = Boot();
        var f = m.CreateFile(PageSize);
        m.Dispose();
        Assert.Throws<ObjectDisposedException>(() => f.Pwrite(new byte[8], 0, out _));
        Assert.Throws<ObjectDisposedException>(() => f.Pread(new byte[8], 0, out _));
        f.Dispose();
    }

    // --- faults that run out of memory once ------------------------------------------------------

    /// <summary>FAIL_ALLOC makes dmirror_devmem_fault's allocation fail once: VM_FAULT_OOM reaches the #PF
    /// handler, pagefault_out_of_memory warns and returns, and the retried access migrates the page back.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void CpuFaultOnADevicePageThatRunsOutOfMemoryOnceIsRetried(DevicePrivateDesign design)
    {
        using var rig = new DeviceRig(design, 42);
        var (m, p, dev, a) = (rig.M, rig.P, rig.Dev, rig.A);
        Assert.Equal(Errno.None, dev.MigrateToDevice(a, 1, new byte[PageSize]).Error);
        Assert.Equal(Errno.None, dev.SetFlags(DmirrorFlags.FailAlloc).Error);
        Assert.Equal(42, p.ReadInt32(a));
        Assert.Contains(m.Dmesg(), l => l.Contains("VM_FAULT_OOM", StringComparison.Ordinal));
    }

    // --- a device mmap the driver fails ------------------------------------------------------------

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceMmapThatRunsOutOfMemoryLeavesNoMappingAndNoPages(DevicePrivateDesign design)
    {
        using var m = Boot(design, ram: 64UL << 20);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        const ulong at = 0x4000_0000, len = 128UL << 20;
        long free = m.VmStat["nr_free_pages"];
        Assert.Equal(Errno.ENOMEM, p.Mmap(at, len, Rw, MapFlags.Shared | MapFlags.FixedNoReplace, out _, dev));
        Assert.Equal(free, m.VmStat["nr_free_pages"]);
        Assert.Equal(Errno.None, p.Mmap(at, len, Rw, PrivAnon | MapFlags.FixedNoReplace, out var b));
        Assert.Equal(at, b);
    }

    // --- CHECK_EXCLUSIVE over a huge range --------------------------------------------------------

    [Theory(Timeout = 120_000)]
    [MemberData(nameof(Designs))]
    public async Task CheckExclusiveOverAHugeRangeVisitsOnlyTheMirrorsEntries(DevicePrivateDesign design)
    {
        using var m = Boot(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = Map(p, 2 * PageSize);
        var buf = new byte[PageSize];
        Assert.Equal(Errno.None, (await Task.Run(() => dev.CheckExclusive(0x1000, 1UL << 51))).Error);
        Assert.Equal(Errno.None, dev.Exclusive(a + PageSize, 1, buf).Error);
        Assert.Equal(Errno.EPERM, (await Task.Run(() => dev.CheckExclusive(0x1000, 1UL << 51))).Error);
        Assert.Equal(Errno.None, (await Task.Run(() => dev.CheckExclusive(a + 2 * PageSize, 1UL << 40))).Error);
    }

    // --- errnos as Linux gives them --------------------------------------------------------------

    [Theory]
    [InlineData(0x04)]
    [InlineData(0x08)]
    public void AnonymousMappingTypeOutsideSharedAndPrivateIsEinval(int extra)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EINVAL, p.Mmap(0, PageSize, Rw, PrivAnon | (MapFlags)extra, out _));
    }

    [Theory]
    [InlineData(0x04)]
    [InlineData(0x08)]
    public void FileMappingTypeOutsideSharedAndPrivateIsEinval(int extra)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.EINVAL, p.Mmap(0, PageSize, Rw, MapFlags.Private | (MapFlags)extra, out _, f));
    }

    [Fact]
    public void AnonymousSharedValidateIsEinval()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EINVAL, p.Mmap(0, PageSize, Rw, MapFlags.Shared | MapFlags.Private | MapFlags.Anonymous, out _));
    }

    /// <summary>MAP_SYNC (0x80000) is not a legacy flag and tmpfs does not support it: MAP_SHARED_VALIDATE
    /// refuses it, plain MAP_SHARED drops it.</summary>
    [Fact]
    public void SharedValidateWithAFlagTheFileDoesNotSupportIsEopnotsupp()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        const MapFlags mapSync = (MapFlags)0x80000;
        Assert.Equal(Errno.EOPNOTSUPP, p.Mmap(0, PageSize, Rw, MapFlags.Shared | MapFlags.Private | mapSync, out _, f));
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Shared | mapSync, out _, f));
    }

    [Fact]
    public void DeviceSharedValidateWithAnUnsupportedFlagIsEopnotsupp()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Assert.Equal(Errno.EOPNOTSUPP, p.Mmap(0, PageSize, Rw, MapFlags.Shared | MapFlags.Private | (MapFlags)0x80000, out _, dev));
    }

    [Theory]
    [InlineData(1UL << 63)]
    [InlineData(ulong.MaxValue - 4095)]
    public void FileOffsetPastMaxLfsFileSizeIsEoverflow(ulong offset)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.EOVERFLOW, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _, f, offset));
    }

    [Fact]
    public void DeviceOffsetWhoseEndPassesUlongMaxIsEoverflow()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Assert.Equal(Errno.EOVERFLOW, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _, dev, ulong.MaxValue - 4095));
    }

    [Theory]
    [InlineData(2 * PageSize, PageSize)]
    [InlineData(PageSize, PageSize)]
    public void MremapOfAnUnmappedAddressWithoutGrowingIsEfault(ulong oldSize, ulong newSize)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a, 2 * PageSize));
        Assert.Equal(Errno.EFAULT, p.Mremap(a, oldSize, newSize, MremapFlags.None, 0, out _));
    }

    [Theory]
    [InlineData(Advice.Random)]
    [InlineData(Advice.Sequential)]
    [InlineData(Advice.WillNeed)]
    public void ReadaheadAdviceIsAccepted(Advice advice)
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        p.WriteInt32(a + PageSize, 5);
        Assert.Equal(Errno.None, p.Madvise(a + PageSize, PageSize, advice));
        Assert.Equal(5, p.ReadInt32(a + PageSize));
        Assert.Equal(Errno.None, p.Madvise(a, 4 * PageSize, Advice.Normal));
    }

    [Fact]
    public void MprotectOfAWrappingRangeIsEnomemEvenWithBadProt()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.ENOMEM, p.Mprotect(0x10000, ulong.MaxValue - 0x8000, (Prot)0x100));
    }

    [Fact]
    public void FixedMappingUnalignedAndAboveTaskSizeIsEnomem()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.ENOMEM, p.Mmap(0x7ffffffff001, PageSize, Rw, PrivAnon | MapFlags.Fixed, out _));
    }

    [Fact]
    public void AnonymousMappingIgnoresTheFile()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, PrivAnon, out var a, f));
        p.WriteInt32(a, 3);
        var back = new byte[4];
        Assert.Equal(Errno.None, f.Pread(back, 0, out _));
        Assert.Equal(0, BitConverter.ToInt32(back));
    }

    [Fact]
    public void AnonymousMappingWithADeviceIgnoresTheDevice()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, PrivAnon, out var a, dev));
        p.WriteInt32(a, 3);
        Assert.Equal(3, p.ReadInt32(a));
    }

    [Fact]
    public void DeviceMmapIgnoresUnknownProtBits()
    {
        using var m = Boot();
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Prot.Read | (Prot)0x8, MapFlags.Shared, out var a, dev));
        Assert.Equal(0, p.ReadInt32(a));
    }

    /// <summary>The prologue only refuses a range whose end, computed with npages &lt;&lt; PAGE_SHIFT wrapping,
    /// is not above addr: 2^52 + 1 pages wraps to one page, which the command then reads.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void IoctlWithAPageCountThatWrapsToOnePageReadsOnePage(DevicePrivateDesign design)
    {
        using var rig = new DeviceRig(design, 11);
        var (m, p, dev, a) = (rig.M, rig.P, rig.Dev, rig.A);
        var buf = new byte[PageSize];
        var r = dev.Read(a, (1UL << 52) + 1, buf);
        Assert.Equal(new DmirrorResult(Errno.None, 1, 1), r);
        Assert.Equal(11, BitConverter.ToInt32(buf));
    }

    [Theory]
    [InlineData(Architecture.X86_64)]
    [InlineData(Architecture.Arm64)]
    public void HintBelowMmapMinAddrIsRaisedToIt(Architecture arch)
    {
        using var m = Boot(arch: arch);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0x1000, PageSize, Rw, PrivAnon, out var a));
        Assert.Equal(0x10000UL, a);
    }

    /// <summary>do_mmap's round_hint_to_min masks the hint to its page before either arch's
    /// get_unmapped_area sees it, so an unaligned hint is rounded down on both.</summary>
    [Theory]
    [InlineData(Architecture.X86_64)]
    [InlineData(Architecture.Arm64)]
    public void UnalignedHintIsRoundedDown(Architecture arch)
    {
        using var m = Boot(arch: arch);
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0x2000_0123, PageSize, Rw, PrivAnon, out var a));
        Assert.Equal(0x2000_0000UL, a);
    }
}

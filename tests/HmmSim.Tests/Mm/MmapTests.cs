using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class MmapTests
{
    [Fact]
    public void MmapAnonymousPrivateReturnsPageAlignedZeroFilledMemory()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        Assert.Equal(0UL, a % PageSize);
        Assert.Equal(0, p.ReadInt32(a + 2 * PageSize + 100));
        p.WriteInt32(a + PageSize, 123);
        Assert.Equal(123, p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MmapOfLengthZeroIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EINVAL, p.Mmap(0, 0, Rw, PrivAnon, out _));
    }

    [Fact]
    public void MmapOfHugeLengthIsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.ENOMEM, p.Mmap(0, ulong.MaxValue - 100, Rw, PrivAnon, out _));
        Assert.Equal(Errno.ENOMEM, p.Mmap(0, 1UL << 60, Rw, PrivAnon, out _));
    }

    [Fact]
    public void MmapWithNeitherSharedNorPrivateIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EINVAL, p.Mmap(0, PageSize, Rw, MapFlags.Anonymous, out _));
    }

    [Fact]
    public void MmapFixedAtUnalignedAddressIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EINVAL, p.Mmap(0x10000001, PageSize, Rw, PrivAnon | MapFlags.Fixed, out _));
    }

    [Fact]
    public void MmapWithUnalignedOffsetIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(4 * PageSize);
        Assert.Equal(Errno.EINVAL, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _, f, 100));
    }

    [Fact]
    public void MmapFixedReplacesExistingMappingAndOldDataIsGone()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        for (ulong i = 0; i < 4; i++)
            p.WriteInt32(a + i * PageSize, 10 + (int)i);
        Assert.Equal(Errno.None, p.Mmap(a + PageSize, 2 * PageSize, Rw, PrivAnon | MapFlags.Fixed, out var b));
        Assert.Equal(a + PageSize, b);
        Assert.Equal(10, p.ReadInt32(a));
        Assert.Equal(0, p.ReadInt32(a + PageSize));
        Assert.Equal(0, p.ReadInt32(a + 2 * PageSize));
        Assert.Equal(13, p.ReadInt32(a + 3 * PageSize));
    }

    [Fact]
    public void MmapFixedNoReplaceOverExistingMappingIsEexist()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        p.WriteInt32(a + PageSize, 77);
        Assert.Equal(Errno.EEXIST, p.Mmap(a + PageSize, PageSize, Rw, PrivAnon | MapFlags.FixedNoReplace, out _));
        Assert.Equal(77, p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MmapFixedNoReplaceIntoHoleSucceedsAtThatAddress()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, PageSize));
        Assert.Equal(Errno.None, p.Mmap(a + PageSize, PageSize, Rw, PrivAnon | MapFlags.FixedNoReplace, out var b));
        Assert.Equal(a + PageSize, b);
    }

    [Fact]
    public void MmapHintIsUsedWhenFree()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        const ulong hint = 0x5000_0000;
        Assert.Equal(Errno.None, p.Mmap(hint, PageSize, Rw, PrivAnon, out var a));
        Assert.Equal(hint, a);
    }

    [Fact]
    public void MmapHintOverExistingMappingPicksAnotherAddress()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 5);
        Assert.Equal(Errno.None, p.Mmap(a, PageSize, Rw, PrivAnon, out var b));
        Assert.NotEqual(a, b);
        Assert.Equal(5, p.ReadInt32(a));
    }

    [Fact]
    public void MmapProtNoneAccessIsSegfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Prot.None);
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a));
    }

    [Fact]
    public void MmapReadOnlyWriteIsSegfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Prot.Read);
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a, 1));
    }

    [Fact]
    public void MmapPopulateFaultsPagesInUpFront()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 4 * PageSize, Rw, PrivAnon | MapFlags.Populate, out var a));
        for (ulong i = 0; i < 4; i++)
            Assert.True(Present(p.PagemapEntry(a + i * PageSize)));
    }

    [Fact]
    public void MmapAccessOfUnmappedAddressIsSegfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.None, p.Munmap(a, PageSize));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a));
    }

    [Fact]
    public void MmapIgnoresUnknownProtBits()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        // do_mmap does not validate prot: unknown bits are dropped by calc_vm_prot_bits.
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Prot.Read | (Prot)0x40, PrivAnon, out var a));
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(a, 1));
    }

    [Fact]
    public void MmapSharedValidateOfAFileIsAcceptedAsShared()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        using var f = m.CreateFile(PageSize);
        // MAP_SHARED_VALIDATE is a file mapping's type; for anonymous memory do_mmap has no such case.
        Assert.Equal(Errno.None, p.Mmap(0, PageSize, Rw, MapFlags.Shared | MapFlags.Private, out var a, f));
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        c.WriteInt32(a, 2);
        Assert.Equal(2, p.ReadInt32(a));
    }

    [Fact]
    public void MmapOfFileWithoutFileIsEbadf()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EBADF, p.Mmap(0, PageSize, Rw, MapFlags.Shared, out _));
    }
}

using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class MremapTests
{
    [Fact]
    public void MremapFixedWithoutMayMoveIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, PageSize, PageSize, MremapFlags.Fixed, 0x6000_0000, out _));
    }

    [Fact]
    public void MremapDontUnmapWithDifferentSizesIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, 2 * PageSize, PageSize, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out _));
    }

    [Fact]
    public void MremapDontUnmapWithoutMayMoveIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, PageSize, PageSize, MremapFlags.DontUnmap, 0, out _));
    }

    [Fact]
    public void MremapOfUnalignedAddressIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a + 4, PageSize, 2 * PageSize, MremapFlags.MayMove, 0, out _));
    }

    [Fact]
    public void MremapToNewLengthZeroIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, PageSize, 0, MremapFlags.MayMove, 0, out _));
    }

    [Fact]
    public void MremapWithUnknownFlagIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, PageSize, PageSize, (MremapFlags)0x40, 0, out _));
    }

    [Fact]
    public void MremapOfUnmappedOldAddressIsEfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EFAULT, p.Mremap(0x4000_0000, PageSize, 2 * PageSize, MremapFlags.MayMove, 0, out _));
    }

    [Fact]
    public void MremapOfOldRangeBeyondVmaIsEfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.EFAULT, p.Mremap(a, 3 * PageSize, 4 * PageSize, MremapFlags.MayMove, 0, out _));
    }

    [Fact]
    public void MremapGrowWithoutRoomAndWithoutMayMoveIsEnomem()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        Assert.Equal(Errno.None, p.Mprotect(a + 2 * PageSize, PageSize, Prot.Read));   // a neighbour right behind
        Assert.Equal(Errno.ENOMEM, p.Mremap(a, 2 * PageSize, 4 * PageSize, MremapFlags.None, 0, out _));
    }

    [Fact]
    public void MremapFixedOverlappingOldRangeIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, 2 * PageSize, 2 * PageSize, MremapFlags.MayMove | MremapFlags.Fixed, a + PageSize, out _));
    }

    [Fact]
    public void MremapShrinkUnmapsTheTail()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        p.WriteInt32(a, 1);
        Assert.Equal(Errno.None, p.Mremap(a, 4 * PageSize, PageSize, MremapFlags.None, 0, out var r));
        Assert.Equal(a, r);
        Assert.Equal(1, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MremapGrowInPlaceKeepsAddressAndData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, 3 * PageSize));
        p.WriteInt32(a, 5);
        Assert.Equal(Errno.None, p.Mremap(a, PageSize, 3 * PageSize, MremapFlags.None, 0, out var r));
        Assert.Equal(a, r);
        Assert.Equal(5, p.ReadInt32(a));
        p.WriteInt32(a + 2 * PageSize, 6);
        Assert.Equal(6, p.ReadInt32(a + 2 * PageSize));
    }

    [Fact]
    public void MremapMoveOfPopulatedPagesCarriesDataAndUnmapsOld()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 8 * PageSize);
        for (ulong i = 0; i < 8; i++)
            p.WriteInt32(a + i * PageSize + 12, 100 + (int)i);
        ulong target = Map(p, 8 * PageSize);
        Assert.Equal(Errno.None, p.Mremap(a, 8 * PageSize, 8 * PageSize, MremapFlags.MayMove | MremapFlags.Fixed, target, out var r));
        Assert.Equal(target, r);
        for (ulong i = 0; i < 8; i++)
            Assert.Equal(100 + (int)i, p.ReadInt32(target + i * PageSize + 12));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a));
    }

    [Fact]
    public void MremapGrowWithMayMoveMovesWhenBlocked()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        Assert.Equal(Errno.None, p.Mprotect(a + 2 * PageSize, PageSize, Prot.Read));
        p.WriteInt32(a + PageSize, 8);
        Assert.Equal(Errno.None, p.Mremap(a, 2 * PageSize, 16 * PageSize, MremapFlags.MayMove, 0, out var r));
        Assert.NotEqual(a, r);
        Assert.Equal(8, p.ReadInt32(r + PageSize));
        Assert.Equal(0, p.ReadInt32(r + 15 * PageSize));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a));
        Assert.Equal(0, p.ReadInt32(a + 2 * PageSize));
    }

    [Fact]
    public void MremapMoveOfThpCarriesDataAndUnmapsOld()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, (int)i * 3);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
        ulong t = MapThp(p);
        Assert.Equal(Errno.None, p.Mremap(h, PmdSize, PmdSize, MremapFlags.MayMove | MremapFlags.Fixed, t, out var r));
        Assert.Equal(t, r);
        for (ulong i = 0; i < 512; i++)
            Assert.Equal((int)i * 3, p.ReadInt32(t + i * PageSize));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(h));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(h + PmdSize - 4));
    }

    [Fact]
    public void MremapDontUnmapMovesDataAndOldRangeReadsZeros()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        for (ulong i = 0; i < 4; i++)
            p.WriteInt32(a + i * PageSize, 50 + (int)i);
        Assert.Equal(Errno.None, p.Mremap(a, 4 * PageSize, 4 * PageSize, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out var r));
        Assert.NotEqual(a, r);
        for (ulong i = 0; i < 4; i++)
        {
            Assert.Equal(50 + (int)i, p.ReadInt32(r + i * PageSize));
            Assert.Equal(0, p.ReadInt32(a + i * PageSize));
        }
    }

    [Fact]
    public void MremapDontUnmapOfThpMovesDataAndOldRangeReadsZeros()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h + 7 * PageSize, 77);
        Assert.Equal(Errno.None, p.Mremap(h, PmdSize, PmdSize, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out var r));
        Assert.Equal(77, p.ReadInt32(r + 7 * PageSize));
        Assert.Equal(0, p.ReadInt32(h + 7 * PageSize));
    }

    [Fact]
    public void MremapMovedAnonMemoryStaysCowSharedWithForkChild()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        Assert.Equal(Errno.None, p.Mremap(a, 2 * PageSize, 32 * PageSize, MremapFlags.MayMove, 0, out var r));
        p.WriteInt32(r, 2);
        Assert.Equal(1, c.ReadInt32(a));
        Assert.Equal(2, p.ReadInt32(r));
    }

    [Fact]
    public void MremapDontUnmapOfSharedAnonymousKeepsSharedDataAtBothAddresses()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize, Rw, SharedAnon);
        p.WriteInt32(a + PageSize, 15);
        Assert.Equal(Errno.None, p.Mremap(a, 2 * PageSize, 2 * PageSize, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out var r));
        Assert.Equal(15, p.ReadInt32(r + PageSize));
        // The old VMA still maps the same shmem object: its data is there, not zeros.
        Assert.Equal(15, p.ReadInt32(a + PageSize));
        p.WriteInt32(r, 16);
        Assert.Equal(16, p.ReadInt32(a));
    }

    [Fact]
    public void MremapWithOldLengthZeroOfPrivateMappingIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, 0, PageSize, MremapFlags.MayMove, 0, out _));
    }
}

public class MremapDuplicateTests
{
    [Fact]
    public void MremapOfZeroLengthDuplicatesASharedMapping()
    {
        using var m = new Machine();
        var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 4 * 4096, Prot.Read | Prot.Write, MapFlags.Shared | MapFlags.Anonymous, out ulong a));
        p.WriteInt32(a + 4096, 77);
        Assert.Equal(Errno.None, p.Mremap(a, 0, 4 * 4096, MremapFlags.MayMove, 0, out ulong dup));
        Assert.NotEqual(a, dup);
        // Both mappings see the same pages, in both directions.
        Assert.Equal(77, p.ReadInt32(dup + 4096));
        p.WriteInt32(dup, 5);
        Assert.Equal(5, p.ReadInt32(a));
        Assert.Equal(77, p.ReadInt32(a + 4096));
    }
}

using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class HugetlbTests
{
    private const MapFlags PrivHuge = MapFlags.Private | MapFlags.Anonymous | MapFlags.Hugetlb;

    [Fact]
    public void HugetlbMappingIsPmdAlignedAndReadsBackWrites()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize, Rw, PrivHuge);
        Assert.Equal(0UL, a % PmdSize);
        p.WriteInt32(a + PmdSize + 100, 9);
        Assert.Equal(9, p.ReadInt32(a + PmdSize + 100));
        Assert.Equal(0, p.ReadInt32(a));
    }

    [Fact]
    public void HugetlbFaultTakesPagesFromThePool()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        long free = m.VmStat["hugetlb_pages_free"];
        ulong a = Map(p, 2 * PmdSize, Rw, PrivHuge);
        p.WriteInt32(a, 1);
        p.WriteInt32(a + PmdSize, 1);
        Assert.Equal(free - 2, m.VmStat["hugetlb_pages_free"]);
        Assert.Equal(Errno.None, p.Munmap(a, 2 * PmdSize));
        Assert.Equal(free, m.VmStat["hugetlb_pages_free"]);
    }

    [Fact]
    public void HugetlbPrivateForkIsCow()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PmdSize, Rw, PrivHuge);
        p.WriteInt32(a + 64, 1);
        using var c = p.Fork();
        Assert.Equal(1, c.ReadInt32(a + 64));
        c.WriteInt32(a + 64, 2);
        Assert.Equal(1, p.ReadInt32(a + 64));
        Assert.Equal(2, c.ReadInt32(a + 64));
        p.WriteInt32(a + 68, 3);
        Assert.Equal(0, c.ReadInt32(a + 68));
    }

    [Fact]
    public void HugetlbSharedForkIsShared()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PmdSize, Rw, MapFlags.Shared | MapFlags.Anonymous | MapFlags.Hugetlb);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        c.WriteInt32(a, 2);
        Assert.Equal(2, p.ReadInt32(a));
    }

    [Fact]
    public void HugetlbMunmapOfUnalignedPartIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize, Rw, PrivHuge);
        p.WriteInt32(a, 5);
        Assert.Equal(Errno.EINVAL, p.Munmap(a + PageSize, PageSize));
        Assert.Equal(5, p.ReadInt32(a));
    }

    [Fact]
    public void HugetlbMunmapOfAlignedHalfSucceeds()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize, Rw, PrivHuge);
        p.WriteInt32(a, 5);
        Assert.Equal(Errno.None, p.Munmap(a + PmdSize, PmdSize));
        Assert.Equal(5, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a + PmdSize));
    }

    [Fact]
    public void HugetlbMprotectOfUnalignedPartIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize, Rw, PrivHuge);
        Assert.Equal(Errno.EINVAL, p.Mprotect(a, PageSize, Prot.Read));
    }

    [Fact]
    public void HugetlbLengthIsRoundedUpToHugePage()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Rw, PrivHuge);
        p.WriteInt32(a + PmdSize - 4, 1);
        Assert.Equal(1, p.ReadInt32(a + PmdSize - 4));
    }

    [Fact]
    public void HugetlbMremapGrowIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PmdSize, Rw, PrivHuge);
        Assert.Equal(Errno.EINVAL, p.Mremap(a, PmdSize, 2 * PmdSize, MremapFlags.MayMove, 0, out _));
    }

    [Fact]
    public void HugetlbMremapShrinkByWholeHugePageSucceeds()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PmdSize, Rw, PrivHuge);
        p.WriteInt32(a, 4);
        Assert.Equal(Errno.None, p.Mremap(a, 2 * PmdSize, PmdSize, MremapFlags.None, 0, out var r));
        Assert.Equal(a, r);
        Assert.Equal(4, p.ReadInt32(a));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a + PmdSize));
    }

    [Fact]
    public void HugetlbMremapMoveCarriesData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PmdSize, Rw, PrivHuge);
        ulong t = Map(p, PmdSize, Rw, PrivHuge);
        p.WriteInt32(a + 12, 8);
        Assert.Equal(Errno.None, p.Mremap(a, PmdSize, PmdSize, MremapFlags.MayMove | MremapFlags.Fixed, t, out var r));
        Assert.Equal(t, r);
        Assert.Equal(8, p.ReadInt32(t + 12));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a));
    }

    [Fact]
    public void HugetlbFixedMappingAtUnalignedAddressIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.EINVAL, p.Mmap(0x4000_1000, PmdSize, Rw, PrivHuge | MapFlags.Fixed, out _));
    }

    [Fact]
    public void HugetlbMremapDontUnmapIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PmdSize, Rw, PrivHuge);
        p.WriteInt32(a, 3);
        // hugetlb VMAs are VM_DONTEXPAND, which MREMAP_DONTUNMAP refuses.
        Assert.Equal(Errno.EINVAL, p.Mremap(a, PmdSize, PmdSize, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out _));
        Assert.Equal(3, p.ReadInt32(a));
    }
}

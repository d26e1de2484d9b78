using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class MunmapTests
{
    [Fact]
    public void MunmapOfUnalignedAddressIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.EINVAL, p.Munmap(a + 1, PageSize));
    }

    [Fact]
    public void MunmapOfLengthZeroIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Munmap(a, 0));
    }

    [Fact]
    public void MunmapOfHugeLengthIsEinval()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(Errno.EINVAL, p.Munmap(a, ulong.MaxValue - PageSize));
    }

    [Fact]
    public void MunmapOfUnmappedRangeSucceeds()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Munmap(0x4000_0000, 16 * PageSize));
    }

    [Fact]
    public void MunmapRoundsLengthUpToWholePage()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a, 1));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a + PageSize - 4));
        Assert.Equal(0, p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MunmapOfMiddleLeavesBothEndsIntact()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        p.WriteInt32(a, 1);
        p.WriteInt32(a + PageSize, 2);
        p.WriteInt32(a + 2 * PageSize, 3);
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, PageSize));
        Assert.Equal(1, p.ReadInt32(a));
        Assert.Equal(3, p.ReadInt32(a + 2 * PageSize));
        Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a + PageSize));
    }

    [Fact]
    public void MunmapSpanningSeveralMappingsAndHolesUnmapsAll()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 8 * PageSize);
        Assert.Equal(Errno.None, p.Mprotect(a + 2 * PageSize, PageSize, Prot.Read));
        Assert.Equal(Errno.None, p.Munmap(a + 4 * PageSize, PageSize));
        Assert.Equal(Errno.None, p.Munmap(a + PageSize, 6 * PageSize));
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(0, p.ReadInt32(a + 7 * PageSize));
        for (ulong i = 1; i < 7; i++)
            Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(a + i * PageSize));
    }

    [Fact]
    public void MunmapFreesTheAnonPages()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 16 * PageSize);
        long before = m.VmStat["nr_anon_pages"];
        for (ulong i = 0; i < 16; i++)
            p.WriteInt32(a + i * PageSize, 1);
        Assert.Equal(before + 16, m.VmStat["nr_anon_pages"]);
        Assert.Equal(Errno.None, p.Munmap(a, 16 * PageSize));
        Assert.Equal(before, m.VmStat["nr_anon_pages"]);
    }

    [Fact]
    public void MunmapInsideThpSplitsPmdAndKeepsRestOfData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, (int)i + 1);
        Assert.Equal(1, m.VmStat["thp_fault_alloc"]);
        long splits = m.VmStat["thp_split_pmd"];
        Assert.Equal(Errno.None, p.Munmap(h + 100 * PageSize, 10 * PageSize));
        Assert.Equal(splits + 1, m.VmStat["thp_split_pmd"]);
        for (ulong i = 0; i < 512; i++)
        {
            if (i is >= 100 and < 110)
                Assert.Throws<SegmentationFaultException>(() => p.ReadInt32(h + i * PageSize));
            else
                Assert.Equal((int)i + 1, p.ReadInt32(h + i * PageSize));
        }
    }
}

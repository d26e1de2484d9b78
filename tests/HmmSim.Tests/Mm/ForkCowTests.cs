using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class ForkCowTests
{
    [Fact]
    public void ForkChildSeesParentDataAndWritesAreIsolated()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        Assert.Equal(1, c.ReadInt32(a));
        p.WriteInt32(a, 2);
        c.WriteInt32(a + PageSize, 3);
        Assert.Equal(2, p.ReadInt32(a));
        Assert.Equal(1, c.ReadInt32(a));
        Assert.Equal(0, p.ReadInt32(a + PageSize));
        Assert.Equal(3, c.ReadInt32(a + PageSize));
    }

    [Fact]
    public void ForkSharesPageUntilWriteThenCopies()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        ulong before = p.PagemapEntry(a);
        Assert.True(Exclusive(before));
        using var c = p.Fork();
        Assert.Equal(Pfn(before), Pfn(c.PagemapEntry(a)));
        Assert.False(Exclusive(p.PagemapEntry(a)));
        long cow = m.VmStat["cow_fault"];
        c.WriteInt32(a, 2);
        Assert.Equal(cow + 1, m.VmStat["cow_fault"]);
        Assert.NotEqual(Pfn(p.PagemapEntry(a)), Pfn(c.PagemapEntry(a)));
        Assert.True(Exclusive(c.PagemapEntry(a)));
    }

    [Fact]
    public void ForkAfterChildExitsParentWriteReusesPage()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        ulong pfn = Pfn(p.PagemapEntry(a));
        var c = p.Fork();
        Assert.Equal(1, c.ReadInt32(a));
        c.Dispose();
        p.WriteInt32(a, 2);
        ulong after = p.PagemapEntry(a);
        Assert.Equal(pfn, Pfn(after));
        Assert.True(Exclusive(after));
        Assert.Equal(2, p.ReadInt32(a));
    }

    [Fact]
    public void ForkOfThpIsCowForParentAndChild()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i += 37)
            p.WriteInt32(h + i * PageSize, (int)i);
        using var c = p.Fork();
        c.WriteInt32(h + 37 * PageSize, -1);
        p.WriteInt32(h + 74 * PageSize, -2);
        for (ulong i = 0; i < 512; i += 37)
        {
            Assert.Equal(i == 37 ? -1 : (int)i, c.ReadInt32(h + i * PageSize));
            Assert.Equal(i == 74 ? -2 : (int)i, p.ReadInt32(h + i * PageSize));
        }
    }

    [Fact]
    public void ForkCowAfterThpSplitKeepsEachSideData()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (ulong i = 0; i < 512; i++)
            p.WriteInt32(h + i * PageSize, (int)i);
        using var c = p.Fork();
        long splits = m.VmStat["thp_split_pmd"];
        Assert.Equal(Errno.None, p.Mprotect(h + 10 * PageSize, PageSize, Prot.Read));
        Assert.True(m.VmStat["thp_split_pmd"] > splits);
        p.WriteInt32(h + 11 * PageSize, 1000);
        c.WriteInt32(h + 12 * PageSize, 2000);
        for (ulong i = 0; i < 512; i++)
        {
            Assert.Equal(i == 11 ? 1000 : (int)i, p.ReadInt32(h + i * PageSize));
            Assert.Equal(i == 12 ? 2000 : (int)i, c.ReadInt32(h + i * PageSize));
        }
    }

    [Fact]
    public void ForkOfSharedAnonymousMappingIsSharedBothWays()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize, Rw, SharedAnon);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        c.WriteInt32(a, 2);
        Assert.Equal(2, p.ReadInt32(a));
        p.WriteInt32(a + PageSize, 3);
        Assert.Equal(3, c.ReadInt32(a + PageSize));
        Assert.Equal(Pfn(p.PagemapEntry(a)), Pfn(c.PagemapEntry(a)));
        Assert.True(FileOrShared(p.PagemapEntry(a)));
    }

    [Fact]
    public void ForkOfForkKeepsThreeIndependentCopies()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        using var g = c.Fork();
        g.WriteInt32(a, 3);
        c.WriteInt32(a, 2);
        Assert.Equal(1, p.ReadInt32(a));
        Assert.Equal(2, c.ReadInt32(a));
        Assert.Equal(3, g.ReadInt32(a));
    }

    [Fact]
    public void ExitOfAllProcessesFreesAllAnonPages()
    {
        using var m = new Machine();
        long before = m.VmStat["nr_anon_pages"];
        var p = m.CreateProcess();
        ulong a = Map(p, 8 * PageSize);
        for (ulong i = 0; i < 8; i++)
            p.WriteInt32(a + i * PageSize, 1);
        var c = p.Fork();
        c.WriteInt32(a, 2);
        p.Dispose();
        c.Dispose();
        Assert.Equal(before, m.VmStat["nr_anon_pages"]);
    }
}

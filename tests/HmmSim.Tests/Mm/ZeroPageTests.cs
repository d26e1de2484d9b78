using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class ZeroPageTests
{
    [Fact]
    public void ReadFaultMapsTheSharedZeroPage()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        Assert.Equal(0, p.ReadInt32(a));
        ulong e = p.PagemapEntry(a);
        Assert.True(Present(e));
        Assert.Equal(m.Kernel.ZeroPfn.Value, Pfn(e));
        Assert.False(Exclusive(e));
    }

    [Fact]
    public void WriteAfterZeroPageReadReplacesIt()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(0, p.ReadInt32(a));
        p.WriteInt32(a, 5);
        ulong e = p.PagemapEntry(a);
        Assert.NotEqual(m.Kernel.ZeroPfn.Value, Pfn(e));
        Assert.True(Exclusive(e));
        Assert.Equal(5, p.ReadInt32(a));
    }

    [Fact]
    public void ZeroPageIsSharedAcrossProcessesAndStaysZero()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        using var q = m.CreateProcess();
        ulong a = Map(p, PageSize);
        ulong b = Map(q, PageSize);
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(0, q.ReadInt32(b));
        p.WriteInt32(a, 1);
        Assert.Equal(0, q.ReadInt32(b));
        Assert.Equal(m.Kernel.ZeroPfn.Value, Pfn(q.PagemapEntry(b)));
    }

    [Fact]
    public void ReadFaultInHugePageRegionMapsHugeZeroFolio()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        Assert.Equal(0, p.ReadInt32(h + 5 * PageSize));
        ulong huge = m.Kernel.HugeZeroPfn.Value;
        for (ulong i = 0; i < 512; i += 101)
        {
            ulong e = p.PagemapEntry(h + i * PageSize);
            Assert.True(Present(e));
            Assert.Equal(huge + i, Pfn(e));
            Assert.False(Exclusive(e));
        }
        Assert.Equal(0, m.VmStat["thp_fault_alloc"]);
    }

    [Fact]
    public void WriteToHugeZeroFolioReplacesIt()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        Assert.Equal(0, p.ReadInt32(h));
        ulong huge = m.Kernel.HugeZeroPfn.Value;
        p.WriteInt32(h + 3 * PageSize, 7);
        ulong e = p.PagemapEntry(h + 3 * PageSize);
        Assert.NotEqual(huge + 3, Pfn(e));
        Assert.True(Exclusive(e));
        Assert.Equal(7, p.ReadInt32(h + 3 * PageSize));
        Assert.Equal(0, p.ReadInt32(h + 4 * PageSize));
    }

    [Fact]
    public void ZeroPageSurvivesForkAndCowWorks()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 2 * PageSize);
        p.WriteInt32(a + PageSize, 1);   // an anon_vma, so fork copies the page tables (vma_needs_copy)
        Assert.Equal(0, p.ReadInt32(a));
        using var c = p.Fork();
        Assert.Equal(m.Kernel.ZeroPfn.Value, Pfn(c.PagemapEntry(a)));
        c.WriteInt32(a, 1);
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(m.Kernel.ZeroPfn.Value, Pfn(p.PagemapEntry(a)));
    }

    [Fact]
    public void UnpopulatedPageHasEmptyPagemapEntry()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(0UL, p.PagemapEntry(a));
    }
}

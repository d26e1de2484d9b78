using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class GupTests
{
    [Fact]
    public void PinWriteThenForkGivesChildACopyImmediately()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        var pages = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, pages, FollFlags.Pin | FollFlags.Write | FollFlags.Longterm));
        using var c = p.Fork();
        ulong pe = p.PagemapEntry(a), ce = c.PagemapEntry(a);
        Assert.True(Present(ce));
        Assert.NotEqual(Pfn(pe), Pfn(ce));
        Assert.Equal(pages[0].ToPfn().Value, Pfn(pe));
        Assert.True(Exclusive(pe));
        Assert.Equal(1, c.ReadInt32(a));
        // The pinned page stays the parent's: a "DMA" write through it is seen by the parent only.
        BitConverter.TryWriteBytes(pages[0].WriteData(), 99);
        Assert.Equal(99, p.ReadInt32(a));
        Assert.Equal(1, c.ReadInt32(a));
        Gup.UnpinUserPage(pages[0]);
    }

    [Fact]
    public void PinWriteOfThpThenForkGivesChildACopy()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        p.WriteInt32(h + PageSize, 1);
        var pages = new Page[1];
        Assert.Equal(1, p.GetUserPages(h + PageSize, pages, FollFlags.Pin | FollFlags.Write));
        using var c = p.Fork();
        Assert.NotEqual(Pfn(p.PagemapEntry(h + PageSize)), Pfn(c.PagemapEntry(h + PageSize)));
        Assert.Equal(pages[0].ToPfn().Value, Pfn(p.PagemapEntry(h + PageSize)));
        Assert.Equal(1, c.ReadInt32(h + PageSize));
        Gup.UnpinUserPage(pages[0]);
    }

    [Fact]
    public void UnpinnedPageIsSharedWithForkChild()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        var pages = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, pages, FollFlags.Pin | FollFlags.Write));
        Gup.UnpinUserPage(pages[0]);
        using var c = p.Fork();
        Assert.Equal(Pfn(p.PagemapEntry(a)), Pfn(c.PagemapEntry(a)));
    }

    [Fact]
    public void PinOfCowSharedPageUnsharesItFirst()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        using var c = p.Fork();
        Assert.Equal(Pfn(p.PagemapEntry(a)), Pfn(c.PagemapEntry(a)));
        var pages = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, pages, FollFlags.Pin));
        ulong pe = p.PagemapEntry(a);
        Assert.Equal(pages[0].ToPfn().Value, Pfn(pe));
        Assert.True(Exclusive(pe));
        Assert.True(pages[0].AnonExclusive);
        Assert.Equal(1, p.ReadInt32(a));
        Gup.UnpinUserPage(pages[0]);
    }

    [Fact]
    public void GetRaisesRefcountAndPutPageRestoresIt()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        var pages = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, pages, FollFlags.Get));
        int rc = pages[0].Folio.RefCount;
        var again = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, again, FollFlags.Get));
        Assert.Equal(pages[0], again[0]);
        Assert.Equal(rc + 1, pages[0].Folio.RefCount);
        Gup.PutPage(again[0]);
        Assert.Equal(rc, pages[0].Folio.RefCount);
        Gup.PutPage(pages[0]);
        Assert.Equal(rc - 1, pages[0].Folio.RefCount);
    }

    [Fact]
    public void PinAddsPinCountingBiasAndUnpinRemovesIt()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        var pages = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, pages, FollFlags.Get));
        int rc = pages[0].Folio.RefCount;
        var pinned = new Page[1];
        Assert.Equal(1, p.GetUserPages(a, pinned, FollFlags.Pin | FollFlags.Write));
        Assert.Equal(rc + Gup.PinCountingBias, pages[0].Folio.RefCount);
        Assert.Equal(1, pages[0].Folio.PinCount);
        Gup.UnpinUserPage(pinned[0]);
        Assert.Equal(rc, pages[0].Folio.RefCount);
        Gup.PutPage(pages[0]);
    }

    [Fact]
    public void GetFaultsInUnpopulatedPages()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 4 * PageSize);
        var pages = new Page[4];
        Assert.Equal(4, p.GetUserPages(a, pages, FollFlags.Get | FollFlags.Write));
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(pages[i].ToPfn().Value, Pfn(p.PagemapEntry(a + (ulong)i * PageSize)));
            Gup.PutPage(pages[i]);
        }
    }

    [Fact]
    public void GetOfUnmappedAddressIsEfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        var pages = new Page[1];
        Assert.Equal(-(long)Errno.EFAULT, p.GetUserPages(0x4000_0000, pages, FollFlags.Get));
    }

    [Fact]
    public void GetStopsAtEndOfMappingAndReturnsCount()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, 3 * PageSize);
        Assert.Equal(Errno.None, p.Munmap(a + 2 * PageSize, PageSize));
        var pages = new Page[3];
        Assert.Equal(2, p.GetUserPages(a, pages, FollFlags.Get));
        Gup.PutPage(pages[0]);
        Gup.PutPage(pages[1]);
    }

    [Fact]
    public void GetWriteOfReadOnlyMappingIsEfault()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize, Prot.Read);
        var pages = new Page[1];
        Assert.Equal(-(long)Errno.EFAULT, p.GetUserPages(a, pages, FollFlags.Get | FollFlags.Write));
    }
}

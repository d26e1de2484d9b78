using HmmSim.Kernel;
using static HmmSim.Kernel.Mm;

namespace HmmSim.Tests.Mm;

/// <summary>alloc_pages_bulk: order-0 pages for a whole array under one hold of the allocator's lock,
/// counted like pages allocated one by one; fewer only when RAM runs out.</summary>
public class AllocPagesBulkTests
{
    [Fact]
    public void ABulkAllocationGivesDistinctFreshPagesAndTheyAllGoBack()
    {
        using var m = new Machine(new MachineConfig());
        var buddy = m.Kernel.Buddy;
        long free = buddy.NrFreePages;
        var blocks = buddy.FreeBlocksPerOrder();
        // More than one per-CPU batch, so the list is refilled while the array is filled.
        var pages = new HmmSim.Kernel.Page[300];
        Assert.Equal(pages.Length, AllocPagesBulk(m.Kernel, pages));
        Assert.Equal(free - pages.Length, buddy.NrFreePages);
        Assert.Equal(pages.Length, pages.Select(p => p.ToPfn()).Distinct().Count());
        foreach (var p in pages)
        {
            Assert.Equal(1, p.Folio.RefCount);
            Assert.False(p.Folio.IsLarge);
            Assert.False(buddy.IsPageFree(p.ToPfn()));
        }
        foreach (var p in pages)
            p.Folio.Put();
        Assert.Equal(free, buddy.NrFreePages);
        Assert.Equal(blocks, buddy.FreeBlocksPerOrder());
    }

    [Fact]
    public void ABulkAllocationStopsWhereRamRunsOut()
    {
        using var m = new Machine(new MachineConfig { RamBytes = 64UL << 20, HugetlbPages = 0 });
        var buddy = m.Kernel.Buddy;
        long free = buddy.NrFreePages;
        var pages = new HmmSim.Kernel.Page[free + 100];
        int got = AllocPagesBulk(m.Kernel, pages);
        Assert.Equal(free, got);
        Assert.Equal(0, buddy.NrFreePages);
        Assert.True(pages[got].IsNull);
        Assert.True(buddy.Alloc(0, compound: false).IsNull);
        for (int i = 0; i < got; i++)
            pages[i].Folio.Put();
        Assert.Equal(free, buddy.NrFreePages);
    }
}

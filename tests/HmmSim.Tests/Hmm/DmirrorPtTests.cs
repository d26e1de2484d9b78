using HmmSim.Drivers.TestHmm;
using HmmSim.Tests.Mm;

namespace HmmSim.Tests.Hmm;

/// <summary>test_hmm's mirror page table (dmirror-&gt;pt): xa_store / xa_load / xa_erase /
/// xa_for_each_range semantics over 512-entry leaves.</summary>
public class DmirrorPtTests
{
    private const byte Read = 0, Atomic = 1, Write = 3;
    private const ulong Leaf = (ulong)DmirrorPt.LeafSlots;

    private static readonly KernelState _kernel = SwapopsTestKernels.Kernel(DevicePrivateDesign.PhysicalAddressSpace);

    private static Page P(ulong pfn) => _kernel.Memmap.PfnToPage(new Pfn(pfn));

    [Fact]
    public void StoreThenLoadReturnsThePageAndItsTag()
    {
        var pt = new DmirrorPt(_kernel);
        pt.Store(7, P(100), Write);
        pt.Store(8, P(101), Atomic);
        pt.Store(Leaf * 3 + 1, P(102), Read);

        Assert.True(pt.TryLoad(7, out var page, out byte tag));
        Assert.Equal(P(100), page);
        Assert.Equal(Write, tag);
        Assert.True(pt.TryLoad(8, out page, out tag));
        Assert.Equal(P(101), page);
        Assert.Equal(Atomic, tag);
        Assert.True(pt.TryLoad(Leaf * 3 + 1, out page, out tag));
        Assert.Equal(P(102), page);
        Assert.Equal(Read, tag);
        Assert.False(pt.TryLoad(9, out _, out _));
        Assert.False(pt.TryLoad(Leaf * 3, out _, out _));
        Assert.False(pt.TryLoad(Leaf * 100, out _, out _));
        Assert.Equal(3, pt.Count);
        Assert.Equal(2, pt.LeafCount);
    }

    [Fact]
    public void StoreReplacesAnEntryWithoutCountingItTwice()
    {
        var pt = new DmirrorPt(_kernel);
        pt.Store(5, P(100), Read);
        pt.Store(5, P(200), Atomic);
        Assert.True(pt.TryLoad(5, out var page, out byte tag));
        Assert.Equal(P(200), page);
        Assert.Equal(Atomic, tag);
        Assert.Equal(1, pt.Count);
    }

    [Fact]
    public void AReadOnlyEntryOfANullPageIsStillPresent()
    {
        // xa_tag_pointer(NULL, WRITE) is a non-NULL entry: presence is not the page.
        var pt = new DmirrorPt(_kernel);
        pt.Store(1, default, Write);
        Assert.True(pt.TryLoad(1, out var page, out byte tag));
        Assert.True(page.IsNull);
        Assert.Equal(Write, tag);
    }

    [Fact]
    public void EraseRangeAcrossLeafBoundariesRemovesExactlyTheInclusiveRange()
    {
        var pt = new DmirrorPt(_kernel);
        for (ulong i = 0; i < 4 * Leaf; i++)
            pt.Store(i, P(1000 + i), (byte)(i % 2 == 0 ? Write : Read));

        pt.EraseRange(Leaf - 3, 2 * Leaf + 4);

        for (ulong i = 0; i < 4 * Leaf; i++)
            Assert.Equal(i < Leaf - 3 || i > 2 * Leaf + 4, pt.TryLoad(i, out _, out _));
        Assert.Equal((long)(4 * Leaf - (Leaf + 8)), pt.Count);
        // The middle leaf was wholly covered and is gone; the two partial ones and the untouched one stay.
        Assert.Equal(3, pt.LeafCount);
        Assert.True(pt.TryLoad(2 * Leaf + 5, out var page, out byte tag));
        Assert.Equal(P(1000 + 2 * Leaf + 5), page);
        Assert.Equal(Read, tag);
    }

    [Fact]
    public void ErasingTheLastEntryOfALeafFreesTheLeaf()
    {
        var pt = new DmirrorPt(_kernel);
        pt.Store(Leaf + 10, P(1), Write);
        pt.Store(Leaf + 11, P(2), Write);
        Assert.Equal(1, pt.LeafCount);

        pt.Erase(Leaf + 10);
        Assert.Equal(1, pt.LeafCount);
        pt.Erase(Leaf + 11);
        Assert.Equal(0, pt.LeafCount);
        Assert.Equal(0, pt.Count);
        Assert.False(pt.TryLoad(Leaf + 11, out _, out _));

        // A store after the leaf was freed (and after the lookup cache pointed at it) builds a new one.
        pt.Store(Leaf + 11, P(3), Atomic);
        Assert.True(pt.TryLoad(Leaf + 11, out var page, out _));
        Assert.Equal(P(3), page);
        Assert.False(pt.TryLoad(Leaf + 10, out _, out _));
    }

    [Fact]
    public void EraseOfAnAbsentEntryChangesNothing()
    {
        var pt = new DmirrorPt(_kernel);
        pt.Store(3, P(3), Write);
        pt.Erase(4);
        pt.EraseRange(Leaf * 10, Leaf * 20);
        Assert.Equal(1, pt.Count);
        Assert.True(pt.TryLoad(3, out _, out _));
    }

    [Fact]
    public void EraseOfTheWholeAddressSpaceEmptiesTheTable()
    {
        // An invalidation of [0, ULONG_MAX]: far wider than the table, walked by the leaves present.
        var pt = new DmirrorPt(_kernel);
        pt.Store(0, P(1), Write);
        pt.Store(Leaf * 1000 + 5, P(2), Read);
        pt.Store(ulong.MaxValue >> 12, P(3), Atomic);
        pt.EraseRange(0, ulong.MaxValue >> 12);
        Assert.Equal(0, pt.Count);
        Assert.Equal(0, pt.LeafCount);
        Assert.False(pt.TryLoad(Leaf * 1000 + 5, out _, out _));
    }

    [Fact]
    public void WideEraseKeepsWhatIsOutsideTheRange()
    {
        var pt = new DmirrorPt(_kernel);
        pt.Store(10, P(1), Write);
        pt.Store(Leaf * 5000, P(2), Write);
        pt.Store(Leaf * 5000 + 1, P(3), Write);
        pt.EraseRange(11, Leaf * 5000);
        Assert.True(pt.TryLoad(10, out _, out _));
        Assert.False(pt.TryLoad(Leaf * 5000, out _, out _));
        Assert.True(pt.TryLoad(Leaf * 5000 + 1, out _, out _));
        Assert.Equal(2, pt.Count);
    }

    [Fact]
    public void ClearDropsEverything()
    {
        var pt = new DmirrorPt(_kernel);
        for (ulong i = 0; i < 3 * Leaf; i += 7)
            pt.Store(i, P(i + 1), Write);
        pt.Clear();
        Assert.Equal(0, pt.Count);
        Assert.Equal(0, pt.LeafCount);
        Assert.False(pt.TryLoad(7, out _, out _));
        pt.Store(7, P(9), Read);
        Assert.True(pt.TryLoad(7, out var page, out _));
        Assert.Equal(P(9), page);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForEachRangeVisitsThePresentEntriesOfTheRangeInIndexOrder(bool wide)
    {
        var pt = new DmirrorPt(_kernel);
        ulong[] present = [2, Leaf - 1, Leaf, 3 * Leaf + 9, 3 * Leaf + 10, 9 * Leaf];
        foreach (ulong i in present.Reverse())
            pt.Store(i, P(i + 1), i == Leaf ? Atomic : Write);
        // A narrow range is walked leaf by leaf; a wide one (more leaves than the table holds) by the
        // table's own leaves, sorted.
        ulong first = wide ? 0UL : 3UL, last = wide ? 1UL << 40 : 3 * Leaf + 9;

        var seen = new List<(ulong, Page, byte)>();
        foreach (var e in pt.ForEachRange(first, last))
            seen.Add((e.Index, e.Page, e.Tag));

        var expected = present.Where(i => i >= first && i <= last).Select(i => (i, P(i + 1), i == Leaf ? Atomic : Write)).ToList();
        Assert.Equal(expected, seen);
    }

    [Fact]
    public void ForEachRangeOfAnEmptyRangeVisitsNothing()
    {
        var pt = new DmirrorPt(_kernel);
        pt.Store(5, P(1), Write);
        int n = 0;
        foreach (var _ in pt.ForEachRange(6, 5))
            n++;
        foreach (var _ in pt.ForEachRange(6, Leaf * 4))
            n++;
        Assert.Equal(0, n);
    }
}

namespace HmmSim.Kernel;

/// <summary>The zone's buddy allocator (mm/page_alloc.c): free lists of orders 0..MAX_PAGE_ORDER,
/// split on allocation (expand) and merge on free (__free_one_page). Free blocks link through
/// their head struct page as in the kernel. RAM sections nobody has allocated from yet are kept
/// as a count and get their memmap only when the allocator first carves them, so an untouched
/// machine costs no memmap; they are reported as free MAX_PAGE_ORDER blocks, as the kernel would.</summary>
internal sealed class Buddy
{
    public const int MaxPageOrder = 10;
    private const uint Nil = uint.MaxValue;

    private readonly Memmap _memmap;
    private Spinlock _lock;   // zone->lock: short, never-blocking sections, taken per page
    private readonly uint[] _freeHead = new uint[MaxPageOrder + 1];
    private readonly long[] _freeCount = new long[MaxPageOrder + 1];
    private readonly ulong _ramPages;
    private readonly int _blocksPerSection;
    private ulong _nextFreshSection;
    private readonly ulong _sectionCount;
    private long _freePages;

    // The per-CPU page lists (struct per_cpu_pages), one for the machine: order-0 pages freed go on
    // the list and allocations take from it, so a page freed and allocated again is not merged into
    // its buddies and split out again every time. Refilled and drained a batch at a time.
    private const int PcpHigh = 2048;
    private const int PcpBatch = 64;
    private readonly uint[] _pcp = new uint[PcpHigh + PcpBatch];
    private int _pcpCount;

    public Buddy(Memmap memmap, ulong ramPages)
    {
        _memmap = memmap;
        _ramPages = ramPages;
        _blocksPerSection = memmap.PagesPerSection >> MaxPageOrder;
        _sectionCount = (ramPages + (ulong)memmap.PagesPerSection - 1) / (ulong)memmap.PagesPerSection;
        Array.Fill(_freeHead, Nil);
        _freePages = (long)ramPages;
    }

    /// <summary>Free pages, those on the per-CPU list included (docs/fidelity.md).</summary>
    public long NrFreePages => Interlocked.Read(ref _freePages);

    /// <summary>/proc/buddyinfo: free blocks per order, counting untouched sections as MAX_PAGE_ORDER blocks.</summary>
    public long[] FreeBlocksPerOrder()
    {
        using (_lock.Acquire())
        {
            DrainPagesLocked();
            var counts = (long[])_freeCount.Clone();
            counts[MaxPageOrder] += (long)FreshBlocks();
            return counts;
        }
    }

    private ulong FreshBlocks()
    {
        if (_nextFreshSection >= _sectionCount)
            return 0;
        ulong freshPages = _ramPages - _nextFreshSection * (ulong)_memmap.PagesPerSection;
        return freshPages >> MaxPageOrder;
    }

    /// <summary>alloc_pages: a block of 2^order pages, refcount 1, or a null page when RAM is exhausted.
    /// With <paramref name="compound"/> the block is a large folio (prep_compound_page).</summary>
    public Page Alloc(int order, bool compound)
    {
        if ((uint)order > MaxPageOrder)
            ThrowHelper.Argument(nameof(order), $"order {order} is above MAX_PAGE_ORDER");
        if (compound && order == 1)
            ThrowHelper.Argument(nameof(order), "the model makes no order-1 folios (their fields need two tail pages)");
        Page page;
        using (_lock.Acquire())
        {
            if (order == 0 && (_pcpCount > 0 || RmqueueBulkLocked()))
            {
                // rmqueue_pcplist
                _freePages--;
                page = _memmap.PfnToPage(new Pfn(_pcp[--_pcpCount]));
            }
            else
            {
                uint pfn;
                // Out of blocks this large: drain the per-CPU list and try again (the allocator's
                // drain_all_pages before it gives up), so pages waiting there still merge.
                if (!TryRmqueueLocked(order, out pfn) && (_pcpCount == 0 || !DrainAndRetryLocked(order, out pfn)))
                    return default;
                _freePages -= 1L << order;
                page = _memmap.PfnToPage(new Pfn(pfn));
            }
        }
        PrepNewPage(page, order, compound);
        return page;
    }

    /// <summary>alloc_pages_bulk: fills <paramref name="pages"/> with order-0 pages (refcount 1) under one
    /// hold of the lock, from the per-CPU list refilled a batch at a time, as the kernel's bulk allocator
    /// does. Returns how many it got: fewer than asked only when RAM is exhausted.</summary>
    public int AllocBulk(Span<Page> pages)
    {
        int got = 0;
        using (_lock.Acquire())
        {
            while (got < pages.Length && (_pcpCount > 0 || RmqueueBulkLocked()))
            {
                pages[got++] = _memmap.PfnToPage(new Pfn(_pcp[--_pcpCount]));
                _freePages--;
            }
            // The per-CPU list is empty and the buddy has no block left: what waits on no list is gone.
        }
        for (int i = 0; i < got; i++)
            PrepNewPage(pages[i], 0, compound: false);
        return got;
    }

    /// <summary>__rmqueue_smallest: the first free block of at least <paramref name="order"/>, split down to it.</summary>
    private bool TryRmqueueLocked(int order, out uint pfn)
    {
        int o = order;
        while (o <= MaxPageOrder && _freeHead[o] == Nil)
            o++;
        if (o > MaxPageOrder)
        {
            if (!CarveFreshSection())
            {
                pfn = Nil;
                return false;
            }
            o = MaxPageOrder;
        }
        pfn = _freeHead[o];
        Unlink(pfn, o);
        // expand: give back the upper halves until the block is the size asked for.
        while (o > order)
        {
            o--;
            AddFree(pfn + (1u << o), o);
        }
        return true;
    }

    /// <summary>rmqueue_bulk: refill the per-CPU list with a batch of order-0 pages.</summary>
    private bool RmqueueBulkLocked()
    {
        while (_pcpCount < PcpBatch && TryRmqueueLocked(0, out uint pfn))
            _pcp[_pcpCount++] = pfn;
        // Reversed so the list hands the pages out in the order the buddy gave them.
        _pcp.AsSpan(0, _pcpCount).Reverse();
        return _pcpCount > 0;
    }

    /// <summary>free_pcppages_bulk over <paramref name="count"/> pages of the per-CPU list, merged back into the buddy.</summary>
    private void FreePcppagesBulkLocked(int count)
    {
        for (int i = 0; i < count && _pcpCount > 0; i++)
            FreeOneLocked(_pcp[--_pcpCount], 0);
    }

    private bool DrainAndRetryLocked(int order, out uint pfn)
    {
        DrainPagesLocked();
        return TryRmqueueLocked(order, out pfn);
    }

    /// <summary>drain_all_pages: the per-CPU list back into the buddy, so the free lists show every free page.</summary>
    private void DrainPagesLocked() => FreePcppagesBulkLocked(_pcpCount);

    private static void PrepNewPage(Page page, int order, bool compound)
    {
        ref var head = ref page.Desc;
        head = default;
        head.RefCount = 1;
        if (!compound || order == 0)
            return;
        head.Flags = (uint)PageFlags.Head;
        for (int i = 1; i < 1 << order; i++)
        {
            ref var t = ref page.Nth(i).Desc;
            t = default;
            t.Flags = (uint)PageFlags.Tail;
            t.Mapping = (uint)i;
        }
        page.Nth(1).Desc.Flags |= (uint)order << 24;
    }

    /// <summary>Frees a folio whose refcount reached zero: its pages lose their data and go back as one block.</summary>
    public void FreeFolio(Folio folio)
    {
        int order = folio.Order;
        var head = folio.Page();
        if (folio.MapCount != 0 || head.Desc.MapCount != 0)
            ThrowHelper.KernelBug($"freeing {folio} that is still mapped (mapcount {folio.MapCount})");
        if (folio.Test(PageFlags.Zero))
            ThrowHelper.KernelBug($"freeing the zero page {folio}");
        FreePages(head, order);
    }

    /// <summary>__free_pages on a block (also used for non-folio kernel allocations such as page tables).</summary>
    public void FreePages(Page head, int order)
    {
        int n = 1 << order;
        var descs = head.Section.Pages.AsSpan(head.Index, n);
        for (int i = 0; i < n; i++)
        {
            if (descs[i].MapCount != 0)
                ThrowHelper.KernelBug($"freeing {head.Nth(i)} with mapcount {descs[i].MapCount}");
        }
        // The block's data slots go back under one pool lock, not one per page.
        _memmap.Data.ReleaseRange(descs);
        descs.Clear();
        uint pfn = (uint)head.ToPfn().Value;
        using (_lock.Acquire())
        {
            _freePages += n;
            if (order == 0)
            {
                // free_unref_page: onto the per-CPU list; past its high mark a batch goes back to the buddy.
                _pcp[_pcpCount++] = pfn;
                if (_pcpCount > PcpHigh)
                    FreePcppagesBulkLocked(PcpBatch);
                return;
            }
            FreeOneLocked(pfn, order);
        }
    }

    /// <summary>__free_one_page: merge with the buddy while it is free and of the same order.</summary>
    private void FreeOneLocked(uint pfn, int order)
    {
        while (order < MaxPageOrder)
        {
            uint buddy = pfn ^ (1u << order);
            if (buddy >= _ramPages || !IsFreeBlock(buddy, order))
                break;
            Unlink(buddy, order);
            pfn = Math.Min(pfn, buddy);
            order++;
        }
        AddFree(pfn, order);
    }

    private bool IsFreeBlock(uint pfn, int order)
    {
        var p = _memmap.PfnToPage(new Pfn(pfn));
        ref var d = ref p.Desc;
        return (d.Flags & (uint)PageFlags.Buddy) != 0 && d.Private == order;
    }

    private bool CarveFreshSection()
    {
        if (FreshBlocks() == 0)
            return false;
        ulong first = _nextFreshSection * (ulong)_memmap.PagesPerSection;
        ulong pages = Math.Min((ulong)_memmap.PagesPerSection, _ramPages - first);
        _nextFreshSection++;
        for (ulong off = 0; off + (1UL << MaxPageOrder) <= pages; off += 1UL << MaxPageOrder)
            AddFree((uint)(first + off), MaxPageOrder);
        return true;
    }

    private void AddFree(uint pfn, int order)
    {
        ref var d = ref _memmap.PfnToPage(new Pfn(pfn)).Desc;
        d = default;
        d.Flags = (uint)PageFlags.Buddy;
        d.Private = order;
        d.Mapping = Nil;
        d.Index = _freeHead[order];
        if (_freeHead[order] != Nil)
            _memmap.PfnToPage(new Pfn(_freeHead[order])).Desc.Mapping = pfn;
        _freeHead[order] = pfn;
        _freeCount[order]++;
    }

    private void Unlink(uint pfn, int order)
    {
        ref var d = ref _memmap.PfnToPage(new Pfn(pfn)).Desc;
        uint prev = d.Mapping, next = d.Index;
        if (prev == Nil)
            _freeHead[order] = next;
        else
            _memmap.PfnToPage(new Pfn(prev)).Desc.Index = next;
        if (next != Nil)
            _memmap.PfnToPage(new Pfn(next)).Desc.Mapping = prev;
        d = default;
        _freeCount[order]--;
    }

    /// <summary>Whether a RAM page is inside a free buddy block (for the invariant checker).</summary>
    public bool IsPageFree(Pfn pfn)
    {
        using (_lock.Acquire())
        {
            DrainPagesLocked();
            if (pfn.Value >= _nextFreshSection * (ulong)_memmap.PagesPerSection)
                return true;
            for (int o = 0; o <= MaxPageOrder; o++)
            {
                uint head = (uint)(pfn.Value & ~((1UL << o) - 1));
                if (IsFreeBlock(head, o))
                    return true;
            }
            return false;
        }
    }
}

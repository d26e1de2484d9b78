using System.Buffers;

namespace HmmSim.Drivers.TestHmm;

/// <summary>One 256 MiB chunk of a dmirror device's memory: struct dmirror_chunk. The per-page
/// arrays stand in for zone_device_data: the backing system page of a device-private page, and the
/// dmirror that migrated it there (what the kernel keeps in the backing page's zone_device_data).</summary>
internal sealed class DmirrorChunk(DmirrorDevice device, DevPagemap pgmap)
{
    public DmirrorDevice Device { get; } = device;
    public DevPagemap Pgmap { get; } = pgmap;
    public bool Remove { get; set; }
    /// <summary>Pages handed out by dmirror_devmem_alloc_page and not yet back in folio_free, under the
    /// device's lock: RELEASE evicts until it is 0, so memunmap never waits on a page still in use.</summary>
    public long Used { get; set; }
    // The backing pages as migrate_pfn encodes them (0: none): one word per device page, nothing for the
    // GC to trace, where a Page handle took two. A page at a 2 MiB-aligned index keeps its entries in
    // the dense per-2 MiB arrays, where a device THP's head records them; the per-page arrays are made
    // at the first entry they hold. A chunk used for THPs alone then never has them: the GC would zero
    // (so make resident) 1 MiB per chunk, and each THP would fault in a 4 KiB host page of each.
    private ulong[]? _backing;
    private DmirrorFile?[]? _owner;
    private readonly ulong[] _backingAligned = new ulong[(pgmap.NrPages + AlignedMask) / (AlignedMask + 1)];
    private readonly DmirrorFile?[] _ownerAligned = new DmirrorFile?[(pgmap.NrPages + AlignedMask) / (AlignedMask + 1)];
    private const int AlignedShift = 9;
    private const ulong AlignedMask = (1UL << AlignedShift) - 1;

    private static bool IsAligned(int index) => ((ulong)index & AlignedMask) == 0;

    /// <summary>The backing page of the device page at <paramref name="index"/> (null if none).</summary>
    public Page Backing(int index)
    {
        ulong v = IsAligned(index) ? _backingAligned[index >> AlignedShift] : Volatile.Read(ref _backing)?[index] ?? 0;
        return MigratePfn.ToPage(Device.Kernel, v);
    }

    public void SetBacking(int index, Page rpage)
    {
        ulong v = rpage.IsNull ? 0 : MigratePfn.FromPage(rpage);
        if (IsAligned(index))
            _backingAligned[index >> AlignedShift] = v;
        else if (v != 0 || Volatile.Read(ref _backing) is not null)
            PerPage(ref _backing)[index] = v;
    }

    /// <summary>The dmirror that migrated the device page at <paramref name="index"/> (null if none).</summary>
    public DmirrorFile? Owner(int index) =>
        IsAligned(index) ? _ownerAligned[index >> AlignedShift] : Volatile.Read(ref _owner)?[index];

    public void SetOwner(int index, DmirrorFile? owner)
    {
        if (IsAligned(index))
            _ownerAligned[index >> AlignedShift] = owner;
        else if (owner is not null || Volatile.Read(ref _owner) is not null)
            PerPage(ref _owner)[index] = owner;
    }

    private T[] PerPage<T>(ref T[]? array) =>
        Volatile.Read(ref array) ?? Interlocked.CompareExchange(ref array, new T[Pgmap.NrPages], null) ?? array!;

    public int IndexOf(Page page) =>
        (int)((Pgmap.InDevicePrivateSpace ? page.ToDevicePrivateIndex().Value : page.ToPfn().Value) - Pgmap.First);
}

/// <summary>struct dmirror_device (lib/test_hmm.c): one /dev/hmm_dmirrorN, its device memory in
/// 256 MiB chunks with LIFO free lists of small pages and of 2 MiB folios.</summary>
internal sealed class DmirrorDevice
{
    public const ulong DevmemChunkSize = 256UL << 20;

    private readonly Lock _devmemLock = new();   // mdevice->devmem_lock
    private Spinlock _lock;                      // mdevice->lock (the free lists), a spinlock as in the kernel
    private readonly List<DmirrorChunk> _chunks = [];
    private readonly Stack<Page> _freePages = new();
    private readonly Stack<Page> _freeFolios = new();

    public DmirrorDevice(KernelState kernel, int unit, DmirrorMemoryType type, ulong spmAddr)
    {
        Kernel = kernel;
        Fops = new DmirrorFileOps(kernel);
        Unit = unit;
        Type = type;
        SpmAddr = spmAddr;
        Pdev = PciGetDevice(kernel, unit) ?? throw new ArgumentOutOfRangeException(nameof(unit), $"no PCI device {unit}");
        PciSetDrvdata(Pdev, this);
    }

    /// <summary>The device's PCI endpoint.</summary>
    public PciDev Pdev { get; }
    /// <summary>The BAR window exposing device memory as P2PDMA pages (nouveau's BAR1 in the series); 0 if none.</summary>
    public ulong P2pSize => P2pdma.PciP2pdmaProvider(Pdev)?.Range.Length ?? 0;

    public KernelState Kernel { get; }
    /// <summary>The /dev node's file operations (its mmap).</summary>
    public DmirrorFileOps Fops { get; }
    public int Unit { get; }
    public DmirrorMemoryType Type { get; }
    /// <summary>spm_addr_dev0/1: the coherent device's fixed physical range.</summary>
    public ulong SpmAddr { get; }
    public bool Probed { get; private set; }
    public long Calloc;
    public long Cfree;
    public bool IsPrivate => Type == DmirrorMemoryType.DevicePrivate;
    public string Name => $"hmm_dmirror{Unit}";

    /// <summary>The device's name: what traces and messages print for an owner cookie that is this device.</summary>
    public override string ToString() => Name;

    public DmirrorChunk[] Chunks()
    {
        lock (_devmemLock)
            return [.. _chunks];
    }

    /// <summary>dmirror_device_init: the device exists only if its first chunk can be set up.</summary>
    public Errno Init()
    {
        var err = AllocateChunk(out _, wantPage: false, isLarge: false);
        if (err != Errno.None)
        {
            Printk(Kernel, $"{Name}: probe failed: could not set up the first {DevmemChunkSize >> 20} MB chunk ({Memremap.ErrName(err)})");
            return err;
        }
        Probed = true;
        return Errno.None;
    }

    /// <summary>dmirror_allocate_chunk.</summary>
    public Errno AllocateChunk(out Page page, bool wantPage, bool isLarge)
    {
        page = default;
        var pgmap = new DevPagemap(IsPrivate ? MemoryType.DevicePrivate : MemoryType.DeviceCoherent, this, new DevPagemapOps
        {
            FolioFree = DevmemFree,
            MigrateToRam = DevmemFault,
            FolioSplit = DevmemFolioSplit,
            GetDmaPfnForDevice = IsPrivate ? GetDmaPfn : null,
        });
        Errno err;
        lock (_devmemLock)
        {
            err = IsPrivate
                ? Memremap.AddDevicePrivateMemory(Kernel, pgmap, DevmemChunkSize, "hmm_dmirror")
                : Memremap.MemremapPages(Kernel, pgmap, new PhysicalRange(SpmAddr, DevmemChunkSize));
            if (err != Errno.None)
                return err;
            var chunk = new DmirrorChunk(this, pgmap);
            pgmap.DriverData = chunk;
            _chunks.Add(chunk);
            Printk(Kernel, $"{Name}: added new {DevmemChunkSize >> 20} MB chunk (total {_chunks.Count} chunks, {_chunks.Count * (int)(DevmemChunkSize >> 20)} MB) {(pgmap.InDevicePrivateSpace ? "offsets" : "PFNs")} [0x{pgmap.First:x} 0x{pgmap.First + pgmap.NrPages:x})");
        }
        using (_lock.Acquire())
        {
            if (((DmirrorChunk)pgmap.DriverData!).Remove)
                return Errno.ENOMEM;   // a RELEASE took the new chunk before its pages were listed
            ulong last = pgmap.First + pgmap.NrPages;
            for (ulong n = pgmap.First; n < last;)
            {
                var p = Memremap.PageOf(Kernel, pgmap, n - pgmap.First);
                if (isLarge && (n & (Arch.PtrsPerTable - 1)) == 0 && n + Arch.PtrsPerTable <= last)
                {
                    _freeFolios.Push(p);
                    n += Arch.PtrsPerTable;
                    continue;
                }
                _freePages.Push(p);
                n++;
            }
            if (!wantPage)
                return Errno.None;
            var list = isLarge ? _freeFolios : _freePages;
            if (list.Count == 0)
                return Errno.ENOMEM;
            page = list.Pop();
            Calloc += isLarge ? Arch.PtrsPerTable : 1;
            ChunkOf(page).Used += isLarge ? Arch.PtrsPerTable : 1;
        }
        return Errno.None;
    }

    public static DmirrorChunk ChunkOf(Page page) =>
        page.Pgmap?.DriverData as DmirrorChunk ?? throw Bug($"{page} is not dmirror device memory");

    /// <summary>BACKING_PAGE: the system page holding a device-private page's data; a coherent page itself.</summary>
    public static Page BackingPage(Page page)
    {
        if (!page.IsDevicePrivate)
            return page;
        var chunk = ChunkOf(page);
        var backing = chunk.Backing(chunk.IndexOf(page));
        var folio = page.Folio;
        if (backing.IsNull && folio.IsLarge && folio.Page() != page)
        {
            // Only a device THP's head records its backing folio; a tail's data is at the same offset in it.
            var head = chunk.Backing(chunk.IndexOf(folio.Page()));
            if (!head.IsNull)
                return head.Nth(FolioPageIdx(folio, page));
        }
        return backing;
    }

    /// <summary>The dmirror whose migration put the page here (rpage->zone_device_data).</summary>
    public static DmirrorFile? OwnerOf(Page page)
    {
        var chunk = ChunkOf(page);
        return chunk.Owner(chunk.IndexOf(page));
    }

    public static void SetOwner(Page page, DmirrorFile dmirror)
    {
        var chunk = ChunkOf(page);
        chunk.SetOwner(chunk.IndexOf(page), dmirror);
    }

    /// <summary>dmirror_devmem_alloc_page: a locked device folio (order 9 if large) with its backing pages.</summary>
    public Page DevmemAllocPage(bool isLarge)
    {
        int order = isLarge ? Arch.HpagePmdOrder : 0;
        Page rpage = default;
        if (IsPrivate)
        {
            rpage = AllocPages(Kernel, order);
            if (rpage.IsNull)
                return default;
        }
        Page dpage = default;
        using (_lock.Acquire())
        {
            var list = isLarge ? _freeFolios : _freePages;
            if (list.Count > 0)
            {
                dpage = list.Pop();
                Calloc += 1L << order;
                ChunkOf(dpage).Used += 1L << order;
            }
        }
        if (dpage.IsNull && AllocateChunk(out dpage, wantPage: true, isLarge) != Errno.None)
        {
            if (!rpage.IsNull)
                FreeBacking(rpage);
            return default;
        }
        // The backing page is recorded before zone_device_folio_init hands the page out (the kernel sets
        // zone_device_data just after): an eviction that takes the page first copies from it.
        var chunk = ChunkOf(dpage);
        chunk.SetBacking(chunk.IndexOf(dpage), rpage);
        Memremap.ZoneDeviceFolioInit(dpage, order);
        return dpage;
    }

    /// <summary>dmirror_devmem_alloc_page for <paramref name="pages"/>.Length small pages at once: the
    /// backing pages come from one alloc_pages_bulk and the device pages off the free list under one hold
    /// of the lock, so a migrate_vma window of 4 KiB pages pays two lock round trips, not two per page
    /// (docs/fidelity.md). Pages the free list cannot give come one at a time (a new chunk if needed).
    /// Returns how many it allocated, the first entries; fewer only when memory is exhausted.</summary>
    public int DevmemAllocPages(Span<Page> pages)
    {
        int n = pages.Length;
        if (IsPrivate)
            n = AllocPagesBulk(Kernel, pages);   // pages[i] holds the i-th backing page until replaced
        int got = 0;
        using (_lock.Acquire())
        {
            while (got < n && _freePages.Count > 0)
            {
                var dpage = _freePages.Pop();
                var chunk = ChunkOf(dpage);
                chunk.Used++;
                chunk.SetBacking(chunk.IndexOf(dpage), IsPrivate ? pages[got] : default);
                pages[got++] = dpage;
            }
            Calloc += got;
        }
        for (int i = 0; i < got; i++)
            Memremap.ZoneDeviceFolioInit(pages[i], 0);
        // The free list ran dry: the backing pages not yet paired go back, the rest one by one.
        for (int i = got; i < n; i++)
            FreeBacking(pages[i]);
        for (; got < pages.Length; got++)
        {
            var dpage = DevmemAllocPage(false);
            if (dpage.IsNull)
                break;
            pages[got] = dpage;
        }
        return got;
    }

    private void FreeBacking(Page rpage)
    {
        FolioPut(rpage.Folio);
    }

    /// <summary>dmirror_devmem_free (folio_free): the backing pages go back to the buddy, the device
    /// folio back on its free list unless its chunk is being removed.</summary>
    private void DevmemFree(Folio folio)
    {
        var page = folio.Page();
        var chunk = ChunkOf(page);
        int idx = chunk.IndexOf(page);
        var rpage = chunk.Backing(idx);
        int order = IsPrivate ? (rpage.IsNull ? 0 : rpage.Folio.Order) : folio.Order;
        if (IsPrivate && !rpage.IsNull)
        {
            FreeBacking(rpage);
            chunk.SetBacking(idx, default);
        }
        chunk.SetOwner(idx, null);
        using (_lock.Acquire())
        {
            chunk.Used -= 1L << order;
            if (chunk.Remove)
                return;
            Cfree += 1L << order;
            (order > 0 ? _freeFolios : _freePages).Push(page);
        }
    }

    /// <summary>dmirror_devmem_folio_split: keep the backing folio in step with a split device folio.</summary>
    private void DevmemFolioSplit(Folio head, Folio tail)
    {
        var chunk = ChunkOf(head.Page());
        int h = chunk.IndexOf(head.Page());
        var rpage = chunk.Backing(h);
        if (rpage.IsNull)
        {
            if (!tail.IsNull)
                chunk.SetBacking(chunk.IndexOf(tail.Page()), default);
            return;
        }
        if (tail.IsNull)
        {
            var rfolio = rpage.Folio;
            FolioResetOrder(rfolio);
            rfolio.Mapping = 0;
            FolioSetCount(rfolio, 1);
            return;
        }
        int offset = chunk.IndexOf(tail.Page()) - h;
        var rtail = rpage.Nth(offset);
        chunk.SetBacking(h + offset, rtail);
        chunk.SetOwner(h + offset, chunk.Owner(h));
        ClearCompoundHead(rtail);
        var rtailFolio = PageFolio(rtail);
        rtailFolio.Mapping = 0;
        FolioSetCount(rtailFolio, 1);
    }

    /// <summary>dmirror_devmem_fault (migrate_to_ram): bring one page (a PMD fault: the whole folio) back.</summary>
    private VmFaultResult DevmemFault(VmFault vmf)
    {
        var folio = vmf.Page.Folio;
        var dmirror = OwnerOf(folio.Page()) ?? throw Bug($"device {vmf.Page} has no owning dmirror");
        int order = vmf.PmdFault ? folio.Order : 0;
        ulong size = Arch.PageSize << order;
        int n = 1 << order;
        var args = RentMigrateVma(n);
        try
        {
            args.Vma = vmf.Vma;
            args.Start = vmf.Address & ~(size - 1);
            args.End = args.Start + size;
            args.PgmapOwner = this;
            args.Flags = SelectDevice() | (order > 0 ? MigrateVmaSelect.Compound : 0);
            args.FaultPage = vmf.Page;
            if (MigrateDevice.MigrateVmaSetup(Kernel, args) != Errno.None)
                return VmFaultResult.Sigbus;
            var ret = FaultAllocAndCopy(args, dmirror);
            if (ret != VmFaultResult.None)
            {
                MigrateDevice.MigrateVmaFinalize(Kernel, args);
                return ret;
            }
            MigrateDevice.MigrateVmaPages(Kernel, args);
            MigrateDevice.MigrateVmaFinalize(Kernel, args);
            return VmFaultResult.None;
        }
        finally
        {
            ReturnMigrateVma(args);
        }
    }

    [ThreadStatic]
    private static MigrateVma? _spareMigrateVma;

    /// <summary>A struct migrate_vma with src/dst arrays of at least <paramref name="npages"/> entries,
    /// zeroed: the kernel's lives on the stack of the ioctl or the fault, so the model keeps one per
    /// thread with its arrays (a nested one gets its own), allocating nothing per migrated page. Not
    /// ArrayPool: its per-core stacks hand a thread that moved to another core a new array.</summary>
    internal static MigrateVma RentMigrateVma(int npages)
    {
        var args = _spareMigrateVma ?? new MigrateVma();
        _spareMigrateVma = null;
        if (args.Src.Length < npages)
        {
            args.Src = new ulong[Math.Max(npages, Arch.PtrsPerTable)];
            args.Dst = new ulong[args.Src.Length];
        }
        Array.Clear(args.Src, 0, npages);
        Array.Clear(args.Dst, 0, npages);
        return args;
    }

    internal static void ReturnMigrateVma(MigrateVma args)
    {
        args.Vma = null;
        args.PgmapOwner = null;
        args.FaultPage = default;
        _spareMigrateVma = args;
    }

    public MigrateVmaSelect SelectDevice() => IsPrivate ? MigrateVmaSelect.DevicePrivate : MigrateVmaSelect.DeviceCoherent;

    /// <summary>dmirror_devmem_fault_alloc_and_copy: system pages for every collected device page, the data
    /// copied from the backing pages, the owning mirror's entries erased. Its stepping is the kernel's:
    /// `order` carries over to the entries that follow a large one.</summary>
    public VmFaultResult FaultAllocAndCopy(MigrateVma args, DmirrorFile dmirror)
    {
        // The window's small system pages come from one bulk allocation before any copy, and the mirror
        // entries are erased a run of consecutive pages under one lock (docs/fidelity.md).
        var batch = PageBatch.Rent();
        var erase = new EraseRun(dmirror);
        try
        {
            if ((dmirror.Flags & DmirrorFlags.FailAlloc) == 0)
                batch.FillSystem(Kernel, PageBatch.CountSmall(args));
            var ret = FaultAllocAndCopy(args, dmirror, batch, ref erase);
            batch.FlushCopies();
            return ret;
        }
        finally
        {
            erase.Flush();
            PageBatch.Return(batch);
        }
    }

    /// <summary>xa_erase of consecutive mirror entries gathered into one EraseRange.</summary>
    private struct EraseRun(DmirrorFile dmirror)
    {
        private ulong _first;
        private int _count;

        public void Add(ulong vpfn)
        {
            if (_count > 0 && vpfn == _first + (ulong)_count)
            {
                _count++;
                return;
            }
            Flush();
            _first = vpfn;
            _count = 1;
        }

        public void Flush()
        {
            dmirror.EraseRange(_first, _count);
            _count = 0;
        }
    }

    private VmFaultResult FaultAllocAndCopy(MigrateVma args, DmirrorFile dmirror, PageBatch batch, ref EraseRun erase)
    {
        int s = 0;
        int order = 0;
        for (ulong addr = args.Start; addr < args.End;)
        {
            var spage = MigratePfn.ToPage(Kernel, args.Src[s]);
            if (spage.IsNull || (args.Src[s] & MigratePfn.Migrate) == 0 || !(spage.IsDevicePrivate || spage.IsDeviceCoherent))
            {
                addr += Arch.PageSize;
                s += 1 << order;
                continue;
            }
            spage = BackingPage(spage);
            order = spage.Folio.Order;
            if (order > 0)
                args.Dst[s] = MigratePfn.Compound;
            if ((args.Src[s] & MigratePfn.Write) != 0)
                args.Dst[s] |= MigratePfn.Write;
            Folio? dfolio;
            if ((dmirror.Flags & DmirrorFlags.FailAlloc) != 0)
            {
                dmirror.Flags &= ~DmirrorFlags.FailAlloc;
                args.Dst[s] &= ~MigratePfn.Compound;
                dfolio = null;
            }
            else
            {
                dfolio = order == 0 ? batch.TakeSystem(Kernel) : FolioAlloc(Kernel, order);
            }
            if (dfolio is null && order == 0)
                return VmFaultResult.Oom;
            if (dfolio is { } df)
            {
                df.Lock();
                args.Dst[s] |= MigratePfn.FromPage(df.Page());
            }
            if (order > 0 && dfolio is { } large)
            {
                // One large folio: the mirror entries go under one lock, the data slots in one batch.
                // A small one takes the loop below, where consecutive entries are erased as one run.
                dmirror.EraseRange(addr >> Arch.PageShift, 1 << order);
                CopyHighpages(large.Page(), spage, 1 << order);
                addr += (ulong)(1 << order) << Arch.PageShift;
                s += 1 << order;
                continue;
            }
            for (int i = 0; i < 1 << order; i++)
            {
                Page dstPage;
                if (dfolio is null)
                {
                    if (FolioAlloc(Kernel, 0) is not { } small)
                    {
                        while (i > 0)
                        {
                            var f = MigratePfn.ToPage(Kernel, args.Dst[s + --i]).Folio;
                            f.Unlock();
                            f.Put();
                        }
                        for (; i < 1 << order; i++)
                            args.Dst[s + i] = 0;
                        return VmFaultResult.Oom;
                    }
                    small.Lock();
                    args.Dst[s + i] = MigratePfn.FromPage(small.Page());
                    dstPage = small.Page();
                }
                else
                {
                    dstPage = dfolio.Value.Page(i);
                }
                erase.Add(addr >> Arch.PageShift);
                batch.AddCopy(dstPage, spage.Nth(i));
                addr += Arch.PageSize;
            }
            s += 1 << order;
        }
        return VmFaultResult.None;
    }

    /// <summary>dmirror_device_evict_chunk: every in-use page of the chunk goes back to system memory.</summary>
    public void EvictChunk(DmirrorChunk chunk)
    {
        using (_lock.Acquire())
        {
            // No page of the chunk is allocated: migrate_device_range would find every one free (refcount
            // 0) and skip it. At GPU-memory scale the walk over every page of every chunk was most of close().
            if (chunk.Used == 0)
                return;
        }
        var pgmap = chunk.Pgmap;
        ulong npages = pgmap.NrPages;
        var src = ArrayPool<ulong>.Shared.Rent((int)npages);
        var dst = ArrayPool<ulong>.Shared.Rent((int)npages);
        try
        {
            EvictChunk(pgmap, npages, src, dst);
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(src);
            ArrayPool<ulong>.Shared.Return(dst);
        }
    }

    private void EvictChunk(DevPagemap pgmap, ulong npages, ulong[] src, ulong[] dst)
    {
        // Rented: zero both, as kvcalloc does (migrate_device_range skips a large folio's tail entries).
        Array.Clear(src, 0, (int)npages);
        Array.Clear(dst, 0, (int)npages);
        var first = Memremap.PageOf(Kernel, pgmap, 0);
        MigrateDevice.MigrateDeviceRange(Kernel, src, MigratePfn.FromPage(first), npages);
        for (ulong i = 0; i < npages; i++)
        {
            var dpage = MigratePfn.ToPage(Kernel, src[i]);
            if (dpage.IsNull || (src[i] & MigratePfn.Migrate) == 0)
                continue;
            var spage = BackingPage(dpage);
            int order = (src[i] & MigratePfn.Compound) != 0 ? dpage.Folio.Order : 0;
            var folio = FolioAlloc(Kernel, order) ?? throw Bug($"{Name}: no system memory to evict device memory into");
            folio.Lock();
            dst[i] = MigratePfn.FromPage(folio.Page()) | (src[i] & MigratePfn.Write) | (order > 0 ? MigratePfn.Compound : 0);
            CopyHighpages(folio.Page(), spage, 1 << order);
        }
        MigrateDevice.MigrateDevicePages(Kernel, src, dst, npages);
        MigrateDevice.MigrateDeviceFinalize(Kernel, src, dst, npages);
    }

    /// <summary>dmirror_device_evict_chunk until no page of the chunk is in use. One pass of
    /// migrate_device_range skips folios someone else holds locked (a migration still filling a page it
    /// allocated before RELEASE, a CPU fault migrating one back); the kernel's driver makes one pass and
    /// memunmap_pages then waits for ever on the page it missed. The model goes round again until every
    /// page it handed out has been freed, so RELEASE neither hangs nor leaks (docs/locking.md).</summary>
    private void EvictUntilUnused(DmirrorChunk chunk)
    {
        var spin = new SpinWait();
        while (true)
        {
            EvictChunk(chunk);
            using (_lock.Acquire())
            {
                if (chunk.Used == 0)
                    return;
            }
            spin.SpinOnce(sleep1Threshold: 10);
        }
    }

    /// <summary>close() in the model: evict every chunk under devmem_lock, so a RELEASE cannot remove a
    /// chunk under the eviction.</summary>
    public void EvictAll()
    {
        lock (_devmemLock)
        {
            foreach (var chunk in _chunks)
                EvictChunk(chunk);
        }
    }

    /// <summary>dmirror_device_remove_chunks (HMM_DMIRROR_RELEASE and device release). The chunks leave
    /// the device's list and free lists under devmem_lock; the eviction and memunmap run after it is
    /// dropped, because a migration that already took a page of a doomed chunk may need devmem_lock to
    /// add a chunk for its next page, and must finish before the doomed chunk can be emptied.</summary>
    public void RemoveChunks()
    {
        DmirrorChunk[] doomed;
        lock (_devmemLock)
        {
            doomed = [.. _chunks];
            _chunks.Clear();
            using (_lock.Acquire())
            {
                foreach (var chunk in doomed)
                    chunk.Remove = true;
                RemoveFreePages(_freePages);
                RemoveFreePages(_freeFolios);
            }
        }
        foreach (var chunk in doomed)
        {
            EvictUntilUnused(chunk);
            if (IsPrivate)
                Memremap.RemoveDevicePrivateMemory(Kernel, chunk.Pgmap);
            else
                Memremap.MemunmapPages(Kernel, chunk.Pgmap);
        }
    }

    /// <summary>dmirror_remove_free_pages for every chunk being removed at once: the kernel walks the free
    /// lists once per chunk, which with a thousand chunks of 256 MiB (bench scale) is a quadratic teardown;
    /// one pass that drops the pages of every doomed chunk leaves the same lists.</summary>
    private static void RemoveFreePages(Stack<Page> list)
    {
        if (list.Count == 0)
            return;
        var pages = list.ToArray();
        list.Clear();
        // ToArray lists the top first: push back bottom first to keep the order.
        for (int i = pages.Length - 1; i >= 0; i--)
        {
            if (!ChunkOf(pages[i]).Remove)
                list.Push(pages[i]);
        }
    }

    /// <summary>The index of a device page in the device's memory: chunk by chunk, in allocation order.</summary>
    private ulong DeviceOffset(Page page)
    {
        var chunk = ChunkOf(page);
        int c;
        lock (_devmemLock)
            c = _chunks.IndexOf(chunk);
        return ((ulong)c * (DevmemChunkSize >> Arch.PageShift)) + (ulong)chunk.IndexOf(page);
    }

    /// <summary>get_dma_pfn_for_device (nouveau_dmem_get_dma_pfn in the series): the PFN of the page's
    /// alias in the BAR, or ENOMEM when P2P is off or the page lies beyond the exposed window.</summary>
    private (Errno, Pfn) GetDmaPfn(Page page)
    {
        var provider = P2pdma.PciP2pdmaProvider(Pdev);
        if (provider is null)
            return (Errno.ENOMEM, default);
        ulong offset = DeviceOffset(page);
        if (offset >= provider.Range.Length >> Arch.PageShift)
            return (Errno.ENOMEM, default);
        return (Errno.None, new Pfn((provider.Range.Start >> Arch.PageShift) + offset));
    }

    /// <summary>Where an access through a P2PDMA alias in this device's BAR lands: the device page's
    /// backing memory (what the GPU would serve from its VRAM through BAR1).</summary>
    public Page AliasTarget(Page p2pPage)
    {
        var provider = P2pdma.PciP2pdmaProvider(Pdev) ?? throw Bug($"{Name} has no P2P BAR but {p2pPage} aliases it");
        ulong offset = p2pPage.ToPfn().Value - (provider.Range.Start >> Arch.PageShift);
        ulong perChunk = DevmemChunkSize >> Arch.PageShift;
        DmirrorChunk chunk;
        lock (_devmemLock)
        {
            if (offset / perChunk >= (ulong)_chunks.Count)
                throw Bug($"P2P access to {p2pPage}: beyond {Name}'s memory");
            chunk = _chunks[(int)(offset / perChunk)];
        }
        var dpage = Memremap.PageOf(Kernel, chunk.Pgmap, offset % perChunk);
        if (dpage.Folio.RefCount == 0)
            throw Bug($"P2P access through {p2pPage} to free device page {dpage}: a stale alias was used");
        return BackingPage(dpage);
    }
}

/// <summary>The small pages of one migrate_vma window allocated ahead of its copies, handed out in
/// order: device pages (dmirror_devmem_alloc_page in bulk) or system pages (alloc_pages_bulk). The
/// copies then run back to back, without an allocator lock between two of them. What is left at the end
/// goes back through folio_put (a device page unlocked first). One per thread, as the ioctl's locals.</summary>
internal sealed class PageBatch
{
    private readonly Page[] _pages = new Page[Arch.PtrsPerTable];
    private int _next, _count;
    // The window's 4 KiB copies, made back to back once its pages are allocated: interleaved with the
    // per-page work, each copy ran well below a flat memcpy's speed.
    private readonly Page[] _copyTo = new Page[Arch.PtrsPerTable];
    private readonly Page[] _copyFrom = new Page[Arch.PtrsPerTable];
    private int _copies;
    private bool _filled, _locked;

    [ThreadStatic]
    private static PageBatch? _spare;

    public static PageBatch Rent()
    {
        var b = _spare ?? new PageBatch();
        _spare = null;
        return b;
    }

    public static void Return(PageBatch batch)
    {
        batch.Release();
        _spare = batch;
    }

    /// <summary>The entries of a window that take a small page: collected and not compound. The count
    /// may be high (a page already in device memory is skipped by MIGRATE_TO_DEV; a small device page
    /// whose backing is part of a large folio takes a folio of that order back to RAM): what is not
    /// used goes back at the end.</summary>
    public static int CountSmall(MigrateVma args)
    {
        int n = 0;
        int npages = (int)((args.End - args.Start) >> Arch.PageShift);
        for (int i = 0; i < npages; i++)
        {
            ulong mpfn = args.Src[i];
            if ((mpfn & MigratePfn.Migrate) != 0 && (mpfn & MigratePfn.Compound) == 0)
                n++;
        }
        return n;
    }

    /// <summary>Up to <paramref name="n"/> small device pages, locked, with their backing pages.</summary>
    public void FillDevice(DmirrorDevice device, int n)
    {
        _count = n == 0 ? 0 : device.DevmemAllocPages(_pages.AsSpan(0, Math.Min(n, _pages.Length)));
        _filled = _locked = true;
    }

    /// <summary>Up to <paramref name="n"/> order-0 system pages (what folio_alloc(GFP_HIGHUSER, 0) gives).</summary>
    public void FillSystem(KernelState kernel, int n)
    {
        _count = n == 0 ? 0 : AllocPagesBulk(kernel, _pages.AsSpan(0, Math.Min(n, _pages.Length)));
        _filled = true;
        _locked = false;
    }

    /// <summary>The next device page (null once the batch is used up: memory ran out); without a batch,
    /// dmirror_devmem_alloc_page.</summary>
    public Page TakeDevice(DmirrorDevice device) =>
        !_filled ? device.DevmemAllocPage(false) : _next < _count ? _pages[_next++] : default;

    /// <summary>The next system folio; past the batch (or without one), folio_alloc.</summary>
    public Folio? TakeSystem(KernelState kernel) =>
        _next < _count ? PageFolio(_pages[_next++]) : FolioAlloc(kernel, 0);

    /// <summary>copy_highpage(to, from), or clear_highpage(to) for a null <paramref name="from"/>, made at
    /// <see cref="FlushCopies"/> (at once if the batch is full).</summary>
    public void AddCopy(Page to, Page from)
    {
        if (_copies == _copyTo.Length)
            FlushCopies();
        _copyTo[_copies] = to;
        _copyFrom[_copies++] = from;
    }

    public void FlushCopies()
    {
        CopyHighpages(_copyTo.AsSpan(0, _copies), _copyFrom.AsSpan(0, _copies));
        Array.Clear(_copyTo, 0, _copies);
        Array.Clear(_copyFrom, 0, _copies);
        _copies = 0;
    }

    private void Release()
    {
        // Copies still pending here were abandoned by an oops: the pages they were for go back below.
        Array.Clear(_copyTo, 0, _copies);
        Array.Clear(_copyFrom, 0, _copies);
        _copies = 0;
        for (; _next < _count; _next++)
        {
            var folio = PageFolio(_pages[_next]);
            if (_locked)
                FolioUnlock(folio);
            FolioPut(folio);
        }
        Array.Clear(_pages, 0, _count);
        _next = _count = 0;
        _filled = _locked = false;
    }
}

using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>A struct folio pointer: the head page of an order-0 or large folio. Large folios are
/// order 2 or more here (their fields need two tail pages); the model makes none of order 1.</summary>
public readonly struct Folio : IEquatable<Folio>
{
    internal readonly MemSection Section;
    internal readonly int Index;

    internal Folio(MemSection section, int index)
    {
        Section = section;
        Index = index;
    }

    /// <summary>The NULL folio pointer (default(Folio)).</summary>
    public bool IsNull => Section is null;
    internal ref PageDesc Head => ref Section.Pages[Index];
    internal ref PageDesc Tail(int n) => ref Section.Pages[Index + n];
    /// <summary>The head for a raw access to <paramref name="field"/>, counted by the device-page census.</summary>
    internal ref PageDesc HeadFor(PageField field, bool write, PageFlags bits = 0)
    {
        DevicePageCensus.Note(Section, Index, field, write, bits);
        return ref Section.Pages[Index];
    }

    /// <summary>Tail page <paramref name="n"/> for a raw access to the folio field <paramref name="field"/>
    /// it holds, counted by the device-page census.</summary>
    internal ref PageDesc TailFor(int n, PageField field, bool write)
    {
        DevicePageCensus.Note(Section, Index, field, write);
        return ref Section.Pages[Index + n];
    }
    internal Memmap Memmap => Section.Owner;
    /// <summary>folio_page: page <paramref name="n"/> of the folio, in a later section for the tails of a
    /// ZONE_DEVICE folio larger than a section.</summary>
    public Page Page(int n = 0) => new Page(Section, Index).Nth(n);
    internal bool Test(PageFlags flag)
    {
        DevicePageCensus.Note(Section, Index, PageField.Flags, false, flag);
        return (Head.Flags & (uint)flag) != 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Note(PageField field, bool write) => DevicePageCensus.Note(Section, Index, field, write);

    /// <summary>folio_test_large: more than one page (PG_head set).</summary>
    public bool IsLarge => Test(PageFlags.Head);
    /// <summary>folio_order: log2 of the page count (0, or 9 for a PMD-sized THP).</summary>
    public int Order
    {
        get
        {
            if (!IsLarge)
                return 0;
            Note(PageField.Order, false);
            return (int)(Tail(1).Flags >> 24);
        }
    }
    /// <summary>folio_nr_pages: 1 &lt;&lt; Order base pages.</summary>
    public int NrPages => 1 << Order;
    /// <summary>folio_size: bytes.</summary>
    public ulong Size => (ulong)NrPages << Arch.PageShift;
    /// <summary>folio_test_anon: anonymous memory (mapping is an anon_vma).</summary>
    public bool IsAnon => Test(PageFlags.Anon);
    /// <summary>folio_is_zone_device: the folio's memory is ZONE_DEVICE (it has a pgmap).</summary>
    public bool IsZoneDevice
    {
        get
        {
            DevicePageCensus.Note(Section, Index, PageField.Flags, false);
            return Section.Zone >= ZoneType.Device;
        }
    }
    /// <summary>folio_is_device_private: ZONE_DEVICE_PRIVATE under that proposal (folio_zonenum alone),
    /// else ZONE_DEVICE of type MEMORY_DEVICE_PRIVATE.</summary>
    public bool IsDevicePrivate => Section.Zone == ZoneType.DevicePrivate
        || Section.Zone == ZoneType.Device && Pgmap?.Type == MemoryType.DevicePrivate;
    /// <summary>folio_is_device_coherent: ZONE_DEVICE of type MEMORY_DEVICE_COHERENT.</summary>
    public bool IsDeviceCoherent => Section.Zone == ZoneType.Device && Pgmap?.Type == MemoryType.DeviceCoherent;
    internal bool IsHugetlb => Test(PageFlags.Hugetlb);
    internal bool IsZero => Test(PageFlags.Zero);

    /// <summary>folio->pgmap: the pagemap of the head's subsection, shared by every tail page. Under
    /// <see cref="PgmapPlacement.PageUnion"/> it is the head page's pgmap word, which an earlier life as a
    /// tail may have overwritten.</summary>
    public DevPagemap? Pgmap
    {
        get
        {
            Note(PageField.Pgmap, false);
            return (Head.Flags & (uint)PageFlags.PgmapOverwritten) == 0
                ? Section.SubsectionPgmap?[Index >> MemSection.SubsectionShift]
                : Memremap.PgmapWordMisread(Page());
        }
    }

    /// <summary>folio_ref_count: the head page's _refcount (0 on a free folio). Read atomically; a
    /// snapshot only, other threads may change it.</summary>
    public int RefCount
    {
        get
        {
            Note(PageField.RefCount, false);
            return Volatile.Read(ref Head.RefCount);
        }
    }

    /// <summary>folio_mapcount: PTE and PMD mappings of any page of the folio.</summary>
    public int MapCount
    {
        get
        {
            bool large = IsLarge;
            Note(large ? PageField.LargeMapcount : PageField.MapCount, false);
            return large ? Volatile.Read(ref Tail(1).RefCount) : Volatile.Read(ref Head.MapCount);
        }
    }

    /// <summary>folio_entire_mapcount: PMD (whole-folio) mappings.</summary>
    internal int EntireMapCount
    {
        get
        {
            if (!IsLarge)
                return 0;
            Note(PageField.EntireMapcount, false);
            return (int)Volatile.Read(ref Tail(1).Index);
        }
    }

    /// <summary>folio_maybe_dma_pinned's count: _pincount for large folios, refcount bias for small.</summary>
    internal int PinCount
    {
        get
        {
            bool large = IsLarge;
            Note(large ? PageField.PinCount : PageField.RefCount, false);
            return large ? Volatile.Read(ref Tail(2).RefCount) : Volatile.Read(ref Head.RefCount) / Gup.PinCountingBias;
        }
    }
    internal bool Mapped => MapCount > 0;

    /// <summary>folio->index: the page offset in the mapping (anon: the linear page index).</summary>
    internal ulong PgIndex
    {
        get
        {
            Note(PageField.Index, false);
            return Head.Index | ((ulong)(Head.Flags >> 24) << 32);
        }
        set
        {
            Note(PageField.Index, true);
            ref var h = ref Head;
            h.Index = (uint)value;
            h.Flags = (h.Flags & 0x00FF_FFFF) | ((uint)(value >> 32) << 24);
        }
    }

    /// <summary>folio->mapping handle (anon_vma or address_space); see <see cref="Memmap.Mappings"/>.</summary>
    public uint Mapping
    {
        get
        {
            Note(PageField.Mapping, false);
            return Head.Mapping;
        }
        set
        {
            Note(PageField.Mapping, true);
            Head.Mapping = value;
        }
    }

    /// <summary>folio_get: the caller already holds a reference, so the count was at least 1
    /// (VM_BUG_ON_FOLIO on a count of 0 or one wrapped negative, with the checker on).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Get()
    {
        Note(PageField.RefCount, true);
        if (Interlocked.Increment(ref Head.RefCount) is <= 1 and > -127)
            GetOfUnreferencedFolio();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void GetOfUnreferencedFolio()
    {
        if (Memmap.Kernel.Config.CheckInvariants)
            ThrowHelper.KernelBug($"VM_BUG_ON_FOLIO: folio_get on {this} with refcount {RefCount - 1}");
    }

    internal void GetMany(int n)
    {
        Note(PageField.RefCount, true);
        Interlocked.Add(ref Head.RefCount, n);
    }

    /// <summary>folio_try_get: fails on a folio that is already on its way to being freed.</summary>
    internal bool TryGet() => TryGetMany(1);

    /// <summary>folio_ref_try_add: adds <paramref name="n"/> references unless the count is already 0.</summary>
    internal bool TryGetMany(int n)
    {
        Note(PageField.RefCount, true);
        ref int rc = ref Head.RefCount;
        int v = Volatile.Read(ref rc);
        while (v > 0)
        {
            int seen = Interlocked.CompareExchange(ref rc, v + n, v);
            if (seen == v)
                return true;
            v = seen;
        }
        return false;
    }

    /// <summary>folio_put: the last reference frees the folio (to the buddy, or to its pagemap).</summary>
    public void Put() => PutMany(1);

    internal void PutMany(int n)
    {
        Note(PageField.RefCount, true);
        int v = Interlocked.Add(ref Head.RefCount, -n);
        if (v == 0)
            Memmap.FreeFolio(this);
        else if (v < 0)
            ThrowHelper.KernelBug($"VM_BUG_ON_FOLIO(folio_ref_count == 0): folio_put_testzero / folio_ref_sub_and_test: refcount of {this} went negative ({v})");
    }

    // --- folio lock (PG_locked) -------------------------------------------------------
    /// <summary>folio_trylock: set PG_locked atomically; false if someone else holds it.</summary>
    public bool TryLock()
    {
        DevicePageCensus.Note(Section, Index, PageField.Flags, true, PageFlags.Locked);
        ref uint f = ref Head.Flags;
        uint v = Volatile.Read(ref f);
        while ((v & (uint)PageFlags.Locked) == 0)
        {
            uint seen = Interlocked.CompareExchange(ref f, v | (uint)PageFlags.Locked, v);
            if (seen == v)
                return true;
            v = seen;
        }
        return false;
    }

    /// <summary>folio_lock: spin (then yield) until PG_locked is ours. Not reentrant: locking a folio
    /// the caller holds deadlocks, as in the kernel.</summary>
    public void Lock()
    {
        if (DeterministicScheduler.Current is { } sched)
        {
            // folio_lock sleeps: a scheduling point, and a contended lock runs another thread.
            sched.Point("folio_lock");
            while (!TryLock())
                sched.Blocked("folio_lock");
            return;
        }
        var spin = new SpinWait();
        while (!TryLock())
            spin.SpinOnce(sleep1Threshold: 20);
    }

    /// <summary>folio_unlock: clear PG_locked; unlocking an unlocked folio is a BUG (<c>KernelBugException</c>).</summary>
    public void Unlock()
    {
        DevicePageCensus.Note(Section, Index, PageField.Flags, true, PageFlags.Locked);
        if ((Interlocked.And(ref Head.Flags, ~(uint)PageFlags.Locked) & (uint)PageFlags.Locked) == 0)
            ThrowHelper.KernelBug($"folio_unlock of unlocked {this}");
    }

    /// <summary>folio_test_locked: PG_locked is set (by anyone).</summary>
    public bool IsLocked => Test(PageFlags.Locked);

    internal void SetFlag(PageFlags flag)
    {
        DevicePageCensus.Note(Section, Index, PageField.Flags, true, flag);
        Interlocked.Or(ref Head.Flags, (uint)flag);
    }

    internal void ClearFlag(PageFlags flag)
    {
        DevicePageCensus.Note(Section, Index, PageField.Flags, true, flag);
        Interlocked.And(ref Head.Flags, ~(uint)flag);
    }

    /// <summary>Pointer equality: the same head page of the same memmap.</summary>
    public bool Equals(Folio other) => ReferenceEquals(Section, other.Section) && Index == other.Index;
    /// <summary>Pointer equality with a boxed <see cref="Folio"/>.</summary>
    public override bool Equals(object? obj) => obj is Folio f && Equals(f);
    /// <summary>Hash of the pointer (memmap section and index).</summary>
    public override int GetHashCode() => HashCode.Combine(RuntimeHelpers.GetHashCode(Section), Index);
    /// <summary>Pointer equality (folio_a == folio_b in C).</summary>
    public static bool operator ==(Folio a, Folio b) => a.Equals(b);
    /// <summary>Pointer inequality.</summary>
    public static bool operator !=(Folio a, Folio b) => !a.Equals(b);
    /// <summary>"folio (pfn|dpi) order N", or "folio (null)".</summary>
    public override string ToString() => IsNull ? "folio (null)" : $"folio {Page().Identity} order {Order}";
}

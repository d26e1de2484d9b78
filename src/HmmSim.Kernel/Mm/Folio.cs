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

    public bool IsNull => Section is null;
    internal ref PageDesc Head => ref Section.Pages[Index];
    internal ref PageDesc Tail(int n) => ref Section.Pages[Index + n];
    internal Memmap Memmap => Section.Owner;
    /// <summary>folio_page: page <paramref name="n"/> of the folio, in a later section for the tails of a
    /// ZONE_DEVICE folio larger than a section.</summary>
    public Page Page(int n = 0) => new Page(Section, Index).Nth(n);
    internal bool Test(PageFlags flag) => (Head.Flags & (uint)flag) != 0;

    public bool IsLarge => Test(PageFlags.Head);
    public int Order => IsLarge ? (int)(Tail(1).Flags >> 24) : 0;
    public int NrPages => 1 << Order;
    public ulong Size => (ulong)NrPages << Arch.PageShift;
    public bool IsAnon => Test(PageFlags.Anon);
    public bool IsZoneDevice => Section.Zone == ZoneType.Device;
    public bool IsDevicePrivate => IsZoneDevice && Pgmap!.Type == MemoryType.DevicePrivate;
    public bool IsDeviceCoherent => IsZoneDevice && Pgmap!.Type == MemoryType.DeviceCoherent;
    internal bool IsHugetlb => Test(PageFlags.Hugetlb);
    internal bool IsZero => Test(PageFlags.Zero);

    /// <summary>folio->pgmap: the pagemap of the head's subsection, shared by every tail page.</summary>
    public DevPagemap? Pgmap => Section.SubsectionPgmap?[Index >> MemSection.SubsectionShift];

    public int RefCount => Volatile.Read(ref Head.RefCount);

    /// <summary>folio_mapcount: PTE and PMD mappings of any page of the folio.</summary>
    public int MapCount => IsLarge ? Volatile.Read(ref Tail(1).RefCount) : Volatile.Read(ref Head.MapCount);
    /// <summary>folio_entire_mapcount: PMD (whole-folio) mappings.</summary>
    internal int EntireMapCount => IsLarge ? (int)Volatile.Read(ref Tail(1).Index) : 0;
    /// <summary>folio_maybe_dma_pinned's count: _pincount for large folios, refcount bias for small.</summary>
    internal int PinCount => IsLarge ? Volatile.Read(ref Tail(2).RefCount) : Volatile.Read(ref Head.RefCount) / Gup.PinCountingBias;
    internal bool Mapped => MapCount > 0;

    /// <summary>folio->index: the page offset in the mapping (anon: the linear page index).</summary>
    internal ulong PgIndex
    {
        get => Head.Index | ((ulong)(Head.Flags >> 24) << 32);
        set
        {
            ref var h = ref Head;
            h.Index = (uint)value;
            h.Flags = (h.Flags & 0x00FF_FFFF) | ((uint)(value >> 32) << 24);
        }
    }

    /// <summary>folio->mapping handle (anon_vma or address_space); see <see cref="Memmap.Mappings"/>.</summary>
    public uint Mapping { get => Head.Mapping; set => Head.Mapping = value; }

    /// <summary>folio_get: the caller already holds a reference, so the count was at least 1
    /// (VM_BUG_ON_FOLIO on a count of 0 or one wrapped negative, with the checker on).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Get()
    {
        if (Interlocked.Increment(ref Head.RefCount) is <= 1 and > -127)
            GetOfUnreferencedFolio();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void GetOfUnreferencedFolio()
    {
        if (Memmap.Kernel.Config.CheckInvariants)
            ThrowHelper.KernelBug($"VM_BUG_ON_FOLIO: folio_get on {this} with refcount {RefCount - 1}");
    }

    internal void GetMany(int n) => Interlocked.Add(ref Head.RefCount, n);

    /// <summary>folio_try_get: fails on a folio that is already on its way to being freed.</summary>
    internal bool TryGet() => TryGetMany(1);

    /// <summary>folio_ref_try_add: adds <paramref name="n"/> references unless the count is already 0.</summary>
    internal bool TryGetMany(int n)
    {
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
        int v = Interlocked.Add(ref Head.RefCount, -n);
        if (v == 0)
            Memmap.FreeFolio(this);
        else if (v < 0)
            ThrowHelper.KernelBug($"VM_BUG_ON_FOLIO(folio_ref_count == 0): folio_put_testzero / folio_ref_sub_and_test: refcount of {this} went negative ({v})");
    }

    // --- folio lock (PG_locked) -------------------------------------------------------
    public bool TryLock()
    {
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

    public void Lock()
    {
        var spin = new SpinWait();
        while (!TryLock())
            spin.SpinOnce(sleep1Threshold: 20);
    }

    public void Unlock()
    {
        if ((Interlocked.And(ref Head.Flags, ~(uint)PageFlags.Locked) & (uint)PageFlags.Locked) == 0)
            ThrowHelper.KernelBug($"folio_unlock of unlocked {this}");
    }

    public bool IsLocked => Test(PageFlags.Locked);

    internal void SetFlag(PageFlags flag) => Interlocked.Or(ref Head.Flags, (uint)flag);
    internal void ClearFlag(PageFlags flag) => Interlocked.And(ref Head.Flags, ~(uint)flag);

    public bool Equals(Folio other) => ReferenceEquals(Section, other.Section) && Index == other.Index;
    public override bool Equals(object? obj) => obj is Folio f && Equals(f);
    public override int GetHashCode() => HashCode.Combine(RuntimeHelpers.GetHashCode(Section), Index);
    public static bool operator ==(Folio a, Folio b) => a.Equals(b);
    public static bool operator !=(Folio a, Folio b) => !a.Equals(b);
    public override string ToString() => IsNull ? "folio (null)" : $"folio {Page().Identity} order {Order}";
}

using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>A struct page pointer: a handle to one entry of some section's memmap.</summary>
public readonly struct Page : IEquatable<Page>
{
    internal readonly MemSection Section;
    internal readonly int Index;

    internal Page(MemSection section, int index)
    {
        Section = section;
        Index = index;
    }

    /// <summary>The NULL page pointer (default(Page)); what migrate_pfn_to_page returns without MIGRATE_PFN_VALID.</summary>
    public bool IsNull => Section is null;
    internal ref PageDesc Desc => ref Section.Pages[Index];
    /// <summary>The struct page for a raw access to <paramref name="field"/>, counted by the device-page census.</summary>
    internal ref PageDesc DescFor(PageField field, bool write, PageFlags bits = 0)
    {
        DevicePageCensus.Note(Section, Index, field, write, bits);
        return ref Section.Pages[Index];
    }
    internal PageFlags Flags
    {
        get
        {
            DevicePageCensus.Note(Section, Index, PageField.Flags, false, (PageFlags)uint.MaxValue);
            return (PageFlags)Desc.Flags;
        }
    }

    internal bool Test(PageFlags flag)
    {
        DevicePageCensus.Note(Section, Index, PageField.Flags, false, flag);
        return (Desc.Flags & (uint)flag) != 0;
    }
    internal Memmap Memmap => Section.Owner;

    /// <summary>is_zone_device_page: the page belongs to a dev_pagemap (ZONE_DEVICE, or the proposal's
    /// ZONE_DEVICE_PRIVATE, which the proposal's helper counts as a device zone too).</summary>
    public bool IsZoneDevice
    {
        get
        {
            DevicePageCensus.Note(Section, Index, PageField.Flags, false);
            return Section.Zone >= ZoneType.Device;
        }
    }
    /// <summary>is_device_private_page: answered by page_zonenum alone under ZONE_DEVICE_PRIVATE, by
    /// pgmap->type in ZONE_DEVICE otherwise.</summary>
    public bool IsDevicePrivate => Section.Zone == ZoneType.DevicePrivate
        || Section.Zone == ZoneType.Device && Pgmap!.Type == MemoryType.DevicePrivate;
    /// <summary>page_zonenum.</summary>
    internal ZoneType ZoneNum => Section.Zone;
    /// <summary>is_device_coherent_page.</summary>
    public bool IsDeviceCoherent => Section.Zone == ZoneType.Device && Pgmap!.Type == MemoryType.DeviceCoherent;
    /// <summary>is_pci_p2pdma_page.</summary>
    public bool IsPciP2pDma => Section.Zone == ZoneType.Device && Pgmap!.Type == MemoryType.PciP2pDma;

    /// <summary>page_to_pfn. A page of the device-private address space has no PFN: asking for one
    /// is the confusion the redesign makes impossible, so it is a BUG.</summary>
    public Pfn ToPfn()
    {
        if (Section.InDevicePrivateSpace)
            ThrowHelper.KernelBug($"page_to_pfn on device-private page {ToDevicePrivateIndex()}: it has no PFN in this design");
        return new Pfn(Section.FirstNumber + (ulong)Index);
    }

    /// <summary>device_private_page_to_offset.</summary>
    public DevicePrivateIndex ToDevicePrivateIndex()
    {
        if (!Section.InDevicePrivateSpace)
            ThrowHelper.KernelBug($"device_private_page_to_offset on a page of the physical address space (pfn 0x{Section.FirstNumber + (ulong)Index:x})");
        return new DevicePrivateIndex(Section.FirstNumber + (ulong)Index);
    }

    /// <summary>The page's number in its own space: its PFN, or its device-private index in the redesign.
    /// For indexing a driver's per-page arrays; never to be turned into a <see cref="Pfn"/>.</summary>
    internal ulong Number => Section.FirstNumber + (ulong)Index;

    /// <summary>A name for messages: the PFN or the device-private index, whichever the page has.</summary>
    public string Identity => Section.InDevicePrivateSpace
        ? $"dpi 0x{Section.FirstNumber + (ulong)Index:x}"
        : $"pfn 0x{Section.FirstNumber + (ulong)Index:x}";

    /// <summary>page_folio. A tail page holds its distance back to the head; a ZONE_DEVICE folio
    /// larger than a section (a PUD-order vmemmap_shift) has tails whose head is in an earlier section.</summary>
    public Folio Folio
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            ref var d = ref Desc;
            DevicePageCensus.Note(Section, Index, PageField.CompoundHead, false);
            if ((d.Flags & (uint)PageFlags.Tail) == 0)
                return new Folio(Section, Index);
            int head = Index - (int)d.Mapping;
            return head >= 0 ? new Folio(Section, head) : FolioInEarlierSection(d.Mapping);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Folio FolioInEarlierSection(uint distance)
    {
        var head = Memmap.PageAt(Section.InDevicePrivateSpace, Number - distance);
        return new Folio(head.Section, head.Index);
    }

    /// <summary>page_pgmap: read through the folio, so head and tail pages agree (seed 003).</summary>
    public DevPagemap? Pgmap => Folio.Pgmap;

    /// <summary>The page's own mapcount (page_mapcount).</summary>
    internal int MapCount
    {
        get
        {
            DevicePageCensus.Note(Section, Index, PageField.MapCount, false);
            return Volatile.Read(ref Desc.MapCount);
        }
    }
    internal bool AnonExclusive => Test(PageFlags.AnonExclusive);

    /// <summary>nth_page: the page <paramref name="n"/> further on in the same address space, which
    /// may be in another section (the memmap is virtually contiguous in the kernel, per section here).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Page Nth(int n)
    {
        int i = Index + n;
        return (uint)i < (uint)Section.Pages.Length ? new(Section, i) : NthInOtherSection(n);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Page NthInOtherSection(int n) => Memmap.PageAt(Section.InDevicePrivateSpace, Number + (ulong)(long)n);

    /// <summary>Pointer equality: the same struct page of the same memmap.</summary>
    public bool Equals(Page other) => ReferenceEquals(Section, other.Section) && Index == other.Index;
    /// <summary>Pointer equality with a boxed <see cref="Page"/>.</summary>
    public override bool Equals(object? obj) => obj is Page p && Equals(p);
    /// <summary>Hash of the pointer (memmap section and index).</summary>
    public override int GetHashCode() => HashCode.Combine(RuntimeHelpers.GetHashCode(Section), Index);
    /// <summary>Pointer equality (page_a == page_b in C).</summary>
    public static bool operator ==(Page a, Page b) => a.Equals(b);
    /// <summary>Pointer inequality.</summary>
    public static bool operator !=(Page a, Page b) => !a.Equals(b);
    /// <summary>"page pfn 0x…" or "page dpi 0x…", or "page (null)".</summary>
    public override string ToString() => IsNull ? "page (null)" : $"page {Identity}";

    /// <summary>The page's bytes for the CPU to read: the shared zero buffer when never written.
    /// A device-private page is not CPU addressable; touching it is the oops the kernel would take.</summary>
    internal ReadOnlySpan<byte> ReadData()
    {
        if (IsZoneDevice && Section.InDevicePrivateSpace || IsDevicePrivate)
            ThrowHelper.KernelBug($"CPU access to device-private {this}: device-private memory is not CPU addressable");
        int slot = Desc.Private;
        return slot == 0 ? PageDataPool.Zeros : Memmap.Data.Get(slot - 1);
    }

    /// <summary>The page's bytes for the CPU to write; allocates the backing bytes on first write.</summary>
    internal Span<byte> WriteData()
    {
        if (IsZoneDevice && Section.InDevicePrivateSpace || IsDevicePrivate)
            ThrowHelper.KernelBug($"CPU access to device-private {this}: device-private memory is not CPU addressable");
        if (Test(PageFlags.Zero))
            ThrowHelper.KernelBug($"write to the shared zero page ({this})");
        ref int slot = ref Desc.Private;
        if (slot == 0)
            Memmap.Data.AllocateFor(ref slot);
        return Memmap.Data.Get(slot - 1);
    }

    /// <summary>copy_highpage: this page's bytes become <paramref name="src"/>'s (zeros if it never held
    /// any), without zeroing a fresh slot first.</summary>
    internal void CopyDataFrom(Page src)
    {
        if (!src.HasData)
        {
            if (HasData)
                WriteData().Clear();
            return;
        }
        var from = src.ReadData();
        if (IsZoneDevice && Section.InDevicePrivateSpace || IsDevicePrivate)
            ThrowHelper.KernelBug($"CPU access to device-private {this}: device-private memory is not CPU addressable");
        ref int slot = ref Desc.Private;
        if (slot == 0)
            Memmap.Data.AllocateFor(ref slot, zero: false);
        from.CopyTo(Memmap.Data.Get(slot - 1));
    }

    /// <summary>copy_highpage over <paramref name="nr"/> consecutive pages (folio_copy): the destination
    /// slots are taken from the pool under one lock, then the bytes copied page by page.</summary>
    internal void CopyDataFrom(Page src, int nr)
    {
        if (nr <= 0 || Index + nr > Section.Pages.Length || src.Index + nr > src.Section.Pages.Length
            || src.Section.Owner != Section.Owner || IsZoneDevice && Section.InDevicePrivateSpace || IsDevicePrivate)
        {
            for (int i = 0; i < nr; i++)
                Nth(i).CopyDataFrom(src.Nth(i));
            return;
        }
        Memmap.Data.AllocateForCopy(Section.Pages.AsSpan(Index, nr), src.Section.Pages.AsSpan(src.Index, nr));
        for (int i = 0; i < nr; i++)
            Nth(i).CopyDataFrom(src.Nth(i));
    }

    /// <summary>The page's bytes for the CPU to overwrite whole: like <see cref="WriteData"/> but a fresh
    /// slot is not zeroed first.</summary>
    internal Span<byte> OverwriteData()
    {
        if (IsZoneDevice && Section.InDevicePrivateSpace || IsDevicePrivate)
            ThrowHelper.KernelBug($"CPU access to device-private {this}: device-private memory is not CPU addressable");
        if (Test(PageFlags.Zero))
            ThrowHelper.KernelBug($"write to the shared zero page ({this})");
        ref int slot = ref Desc.Private;
        if (slot == 0)
            Memmap.Data.AllocateFor(ref slot, zero: false);
        return Memmap.Data.Get(slot - 1);
    }

    /// <summary>Whether the page has backing bytes (written at least once since allocation).</summary>
    internal bool HasData
    {
        get
        {
            DevicePageCensus.Note(Section, Index, PageField.Private, false);
            return Desc.Private != 0;
        }
    }
}

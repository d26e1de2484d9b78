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
        || Section.Zone == ZoneType.Device && Pgmap?.Type == MemoryType.DevicePrivate;
    /// <summary>page_zonenum.</summary>
    internal ZoneType ZoneNum => Section.Zone;
    /// <summary>is_device_coherent_page.</summary>
    public bool IsDeviceCoherent => Section.Zone == ZoneType.Device && Pgmap?.Type == MemoryType.DeviceCoherent;
    /// <summary>is_pci_p2pdma_page.</summary>
    public bool IsPciP2pDma => Section.Zone == ZoneType.Device && Pgmap?.Type == MemoryType.PciP2pDma;
    /// <summary>What the page's memory really is, whatever its pgmap word says: the model's own guard
    /// against CPU access to device-private memory uses this, not the kernel's is_device_private_page
    /// (and the census does not count it).</summary>
    private bool IsDevicePrivateMemory => Section.Zone == ZoneType.DevicePrivate || Section.Zone == ZoneType.Device
        && (Section.InDevicePrivateSpace || Section.SubsectionPgmap?[Index >> MemSection.SubsectionShift]?.Type == MemoryType.DevicePrivate);

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

    /// <summary>The page as a trace field: offset=0x.. for a device-private index of the redesign,
    /// pfn=0x.. otherwise (one key=value pair, no spaces).</summary>
    internal string TraceField => Section.InDevicePrivateSpace
        ? $"offset=0x{Section.FirstNumber + (ulong)Index:x}"
        : $"pfn=0x{Section.FirstNumber + (ulong)Index:x}";

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

    /// <summary>page_pgmap: read through the folio, so head and tail pages agree (seed 003). Under
    /// <see cref="PgmapPlacement.PageUnion"/> it is page->pgmap, the word a tail's compound_head took.</summary>
    public DevPagemap? Pgmap => (Desc.Flags & (uint)PageFlags.PgmapOverwritten) == 0 ? Folio.Pgmap : Memremap.PgmapWordMisread(this);

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

    private void ThrowIfNotCpuAddressable()
    {
        if (IsDevicePrivateMemory)
            ThrowHelper.KernelBug($"CPU access to device-private {this}: device-private memory is not CPU addressable");
    }

    /// <summary>The page's bytes as one span, for the kernel's own structures (page tables) that read
    /// them in place: the shared zero buffer when never written; a same-filled page is materialised.
    /// User data is read with <see cref="CopyDataTo"/>, which never materialises.</summary>
    internal ReadOnlySpan<byte> ReadData()
    {
        ThrowIfNotCpuAddressable();
        int slot = Desc.Private;
        if (slot < 0)
            return WriteData();
        return slot == 0 ? PageDataPool.Zeros : Memmap.Data.Get(slot - 1);
    }

    /// <summary>memcpy_from_page: <paramref name="dst"/>.Length bytes from <paramref name="offset"/>,
    /// exact whichever way the page holds them (bytes, one repeated word, never written).</summary>
    internal void CopyDataTo(int offset, Span<byte> dst)
    {
        ThrowIfNotCpuAddressable();
        int v = Volatile.Read(ref Desc.Private);
        if (v > 0)
            Memmap.Data.Get(v - 1).Slice(offset, dst.Length).CopyTo(dst);
        else if (v == 0)
            dst.Clear();
        else
            PageDataPool.Fill(dst, Memmap.Data.Word(v), offset);
    }

    /// <summary>The page's bytes for the CPU to write in part; allocates the backing bytes on first write
    /// (a same-filled page is materialised with its word).</summary>
    internal Span<byte> WriteData()
    {
        ThrowIfNotCpuAddressable();
        if (Test(PageFlags.Zero))
            ThrowHelper.KernelBug($"write to the shared zero page ({this})");
        ref int slot = ref Desc.Private;
        if (slot <= 0)
            Memmap.Data.AllocateFor(ref slot);
        return Memmap.Data.Get(slot - 1);
    }

    /// <summary>A store of all 4096 bytes: a page that is one repeated word keeps only the word
    /// (zswap_is_page_same_filled), any other is copied into the page's slot.</summary>
    internal void WriteWholePage(ReadOnlySpan<byte> src)
    {
        if (PageDataPool.IsSameFilled(src, out ulong word))
        {
            ThrowIfNotCpuAddressable();
            if (Test(PageFlags.Zero))
                ThrowHelper.KernelBug($"write to the shared zero page ({this})");
            Memmap.Data.SetWord(ref Desc.Private, word);
            return;
        }
        src.CopyTo(OverwriteData());
    }

    /// <summary>copy_highpage: this page's bytes become <paramref name="src"/>'s: zeros if it never held
    /// any, its word if it is same-filled (held so, or bytes that are one word), else a copy of its bytes
    /// into a slot not zeroed first.</summary>
    internal void CopyDataFrom(Page src)
    {
        int s = src.Desc.Private;
        if (s > 0)
        {
            var from = src.ReadData();
            ThrowIfNotCpuAddressable();
            ref int slot = ref Desc.Private;
            if (slot <= 0)
                Memmap.Data.AllocateFor(ref slot, zero: false);
            from.CopyTo(Memmap.Data.Get(slot - 1));
            // Probed after the copy, on the source it just read (see CopyDataFrom(Page, int)).
            if (PageDataPool.IsSameFilled(from, out ulong w))
                CopyWord(w);
            return;
        }
        src.ThrowIfNotCpuAddressable();
        CopyWord(s == 0 ? 0 : src.Memmap.Data.Word(s));
    }

    private void CopyWord(ulong word)
    {
        ThrowIfNotCpuAddressable();
        if (word == 0 && !HasData)
            return;
        Memmap.Data.SetWord(ref Desc.Private, word);
    }

    /// <summary>copy_highpage over <paramref name="nr"/> consecutive pages (folio_copy): the destination
    /// slots and words are settled under one pool lock, then the bytes copied page by page; copies that
    /// are one word repeated keep only the word.</summary>
    internal void CopyDataFrom(Page src, int nr)
    {
        if (nr <= 0 || Index + nr > Section.Pages.Length || src.Index + nr > src.Section.Pages.Length
            || src.Section.Owner != Section.Owner || IsDevicePrivateMemory || src.IsDevicePrivateMemory)
        {
            for (int i = 0; i < nr; i++)
                Nth(i).CopyDataFrom(src.Nth(i));
            return;
        }
        var dst = Section.Pages.AsSpan(Index, nr);
        var from = src.Section.Pages.AsSpan(src.Index, nr);
        var data = Memmap.Data;
        data.AllocateForCopy(dst, from);
        bool sameFilled = false;
        for (int i = 0; i < nr; i++)
            sameFilled |= data.CopyBytes(dst[i].Private, from[i].Private);
        if (sameFilled)
            data.KeepWords(dst);
    }

    /// <summary>copy_highpage of each pair (a null source: clear_highpage), for pages of one memmap: the
    /// destination slots and words settled under one pool lock, then the bytes copied back to back; copies
    /// that turn out to be one word repeated keep only the word.</summary>
    internal static void CopyDataEach(ReadOnlySpan<Page> to, ReadOnlySpan<Page> from)
    {
        if (to.Length != from.Length)
            throw new ArgumentException("one source page per destination page", nameof(from));
        if (to.Length == 0)
            return;
        var memmap = to[0].Memmap;
        for (int i = 0; i < to.Length; i++)
        {
            to[i].ThrowIfNotCpuAddressable();
            if (to[i].Memmap != memmap || !from[i].IsNull && from[i].Memmap != memmap)
            {
                CopyEachApart(to, from);
                return;
            }
            if (!from[i].IsNull)
                from[i].ThrowIfNotCpuAddressable();
        }
        var data = memmap.Data;
        data.AllocateForCopies(to, from);
        bool sameFilled = false;
        for (int i = 0; i < to.Length; i++)
            sameFilled |= !from[i].IsNull && data.CopyBytes(to[i].Desc.Private, from[i].Desc.Private);
        if (sameFilled)
            data.KeepWords(to);
    }

    private static void CopyEachApart(ReadOnlySpan<Page> to, ReadOnlySpan<Page> from)
    {
        for (int i = 0; i < to.Length; i++)
        {
            if (from[i].IsNull)
                to[i].ClearData();
            else
                to[i].CopyDataFrom(from[i]);
        }
    }

    /// <summary>clear_highpage: the page reads as zeros again (its slot or word, if any, goes back).</summary>
    internal void ClearData()
    {
        if (HasData)
            Memmap.Data.SetWord(ref Desc.Private, 0);
    }

    /// <summary>The page's bytes for the CPU to overwrite whole: like <see cref="WriteData"/> but a fresh
    /// slot is not zeroed (nor filled) first.</summary>
    internal Span<byte> OverwriteData()
    {
        ThrowIfNotCpuAddressable();
        if (Test(PageFlags.Zero))
            ThrowHelper.KernelBug($"write to the shared zero page ({this})");
        ref int slot = ref Desc.Private;
        if (slot <= 0)
            Memmap.Data.AllocateFor(ref slot, zero: false);
        return Memmap.Data.Get(slot - 1);
    }

    /// <summary>Whether the page holds one repeated word instead of bytes.</summary>
    internal bool IsSameFilled => Desc.Private < 0;

    /// <summary>Whether the page holds anything but zeros: bytes, or a non-zero repeated word.</summary>
    internal bool HasData
    {
        get
        {
            DevicePageCensus.Note(Section, Index, PageField.Private, false);
            return Desc.Private != 0;
        }
    }
}

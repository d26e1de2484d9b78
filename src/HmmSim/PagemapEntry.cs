using System.Globalization;
using System.Text;

namespace HmmSim;

/// <summary>One decoded 64-bit /proc/pid/pagemap entry (Documentation/admin-guide/mm/pagemap.rst), as
/// <see cref="Process.PagemapEntry(ulong)"/> returns it or as found in a log. Bits 0-54 are the page
/// frame number when <see cref="Present"/>, or the swap type (bits 0-4) and offset (bits 5-54) when
/// <see cref="Swapped"/>; bit 55 soft-dirty, 56 exclusively mapped, 57 uffd-wp, 61 file-page or
/// shared-anon, 62 swapped, 63 present.</summary>
/// <param name="Raw">The entry as the kernel writes it.</param>
public readonly record struct PagemapEntry(ulong Raw)
{
    // The kernel's PM_* bits (fs/proc/task_mmu.c), from the model's own definition of them.
    private const ulong PresentBit = Kernel.TaskMmu.PmPresent;
    private const ulong SwapBit = Kernel.TaskMmu.PmSwap;
    private const ulong FileBit = Kernel.TaskMmu.PmFile;
    private const ulong UffdWpBit = Kernel.TaskMmu.PmUffdWp;
    private const ulong ExclusiveBit = Kernel.TaskMmu.PmMmapExclusive;
    private const ulong SoftDirtyBit = Kernel.TaskMmu.PmSoftDirty;
    private const ulong FrameMask = Kernel.TaskMmu.PmPframeMask;
    private const int SwapTypeBits = Kernel.SwapEntry.MaxSwapfilesShift;

    /// <summary>Bit 63: the page is present in RAM (or device memory the CPU maps).</summary>
    public bool Present => (Raw & PresentBit) != 0;

    /// <summary>Bit 62: a swap-type entry (swap, migration, device-private, device-exclusive, marker).</summary>
    public bool Swapped => (Raw & SwapBit) != 0;

    /// <summary>Bit 61: a file page or shared anonymous page.</summary>
    public bool FileOrShared => (Raw & FileBit) != 0;

    /// <summary>Bit 57: write-protected by userfaultfd.</summary>
    public bool UffdWriteProtected => (Raw & UffdWpBit) != 0;

    /// <summary>Bit 56: the page is mapped exclusively (by this process only).</summary>
    public bool Exclusive => (Raw & ExclusiveBit) != 0;

    /// <summary>Bit 55: the PTE is soft-dirty.</summary>
    public bool SoftDirty => (Raw & SoftDirtyBit) != 0;

    /// <summary>Bits 0-54 of a present entry: the page frame number, or null when not present.</summary>
    public ulong? Pfn => Present ? Raw & FrameMask : null;

    /// <summary>Bits 0-4 of a swap-type entry: the swap type, or null when not swapped.</summary>
    public uint? SwapType => Swapped ? (uint)(Raw & ((1UL << SwapTypeBits) - 1)) : null;

    /// <summary>Bits 5-54 of a swap-type entry: the swap offset (for device-private entries, the PFN or
    /// device-private index of the page), or null when not swapped.</summary>
    public ulong? SwapOffset => Swapped ? (Raw & FrameMask) >> SwapTypeBits : null;

    /// <summary>A non-present, non-swapped entry: nothing is mapped there.</summary>
    public bool IsNone => !Present && !Swapped;

    /// <summary>"present pfn=0x1234 exclusive soft-dirty", "swapped type=27 offset=0x10", "none".</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        if (Present)
            sb.Append(CultureInfo.InvariantCulture, $"present pfn=0x{Pfn:x}");
        else if (Swapped)
            sb.Append(CultureInfo.InvariantCulture, $"swapped type={SwapType} offset=0x{SwapOffset:x}");
        else
            sb.Append("none");
        if (Exclusive)
            sb.Append(" exclusive");
        if (SoftDirty)
            sb.Append(" soft-dirty");
        if (FileOrShared)
            sb.Append(" file/shared");
        if (UffdWriteProtected)
            sb.Append(" uffd-wp");
        return sb.ToString();
    }
}

/// <summary>Readable text for <see cref="DmirrorProt"/>: the snapshot byte is a kind in the high nibble
/// (zero page, device-private or device-coherent, local or remote) plus Read/Write/Pmd/Pud bits.</summary>
public static class DmirrorProtText
{
    /// <summary>"DevPrivateLocal|Write" for 0x22, "Read|Pmd" for 0x05, "None", "Error", or the hex
    /// value for a byte no dmirror writes.</summary>
    public static string ToText(this DmirrorProt prot)
    {
        if (prot is DmirrorProt.None or DmirrorProt.Error)
            return prot.ToString();
        byte b = (byte)prot;
        var parts = new List<string>(4);
        var kind = (DmirrorProt)(b & 0xF0);
        if (kind != DmirrorProt.None)
        {
            if (!Enum.IsDefined(kind))
                return "0x" + b.ToString("x2", CultureInfo.InvariantCulture);
            parts.Add(kind.ToString());
        }
        if ((b & (byte)DmirrorProt.Read) != 0)
            parts.Add(nameof(DmirrorProt.Read));
        if ((b & (byte)DmirrorProt.Write) != 0)
            parts.Add(nameof(DmirrorProt.Write));
        if ((b & (byte)DmirrorProt.Pmd) != 0)
            parts.Add(nameof(DmirrorProt.Pmd));
        if ((b & (byte)DmirrorProt.Pud) != 0)
            parts.Add(nameof(DmirrorProt.Pud));
        return string.Join('|', parts);
    }
}

using HmmSim.Kernel;
using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>An unlinked tmpfs file (O_TMPFILE + ftruncate). Dispose closes it; its pages live on
/// while a mapping still holds the file.</summary>
public sealed class ShmemFile : IDisposable
{
    private readonly Machine _machine;
    private bool _closed;

    internal ShmemFile(Machine machine, ulong size)
    {
        _machine = machine;
        Mapping = new AddressSpace(machine.Kernel.Memmap, size);
        Shmem.FileGet(Mapping);
    }

    internal AddressSpace Mapping { get; }
    internal Machine Machine => _machine;
    internal bool IsClosed => _closed;
    /// <summary>i_size: the file's length in bytes, fixed at creation.</summary>
    public ulong Size => Mapping.Size;

    /// <summary>The file's own calls fail as a closed fd would once closed, and once the machine is gone.</summary>
    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        _machine.ThrowIfDisposed();
    }

    /// <summary>pwrite(2): write <paramref name="source"/> at byte <paramref name="offset"/> through the page
    /// cache (pages allocated as needed) and say how much in <paramref name="written"/>. EFBIG for a write
    /// past the end (the file does not grow here); ENOSPC when not even the first page could be allocated
    /// (a later failure is a short write).</summary>
    public Errno Pwrite(ReadOnlySpan<byte> source, ulong offset, out ulong written)
    {
        written = 0;
        ThrowIfUnusable();
        if (offset > Size || (ulong)source.Length > Size - offset)
            return Errno.EFBIG;
        var kernel = _machine.Kernel;
        while (written < (ulong)source.Length)
        {
            ulong pos = offset + written;
            int inPage = (int)(pos & (Arch.PageSize - 1));
            int n = (int)Math.Min(Arch.PageSize - (ulong)inPage, (ulong)source.Length - written);
            if (Shmem.GetFolio(kernel, Mapping, pos >> Arch.PageShift, out var folio) != VmFaultResult.None)
                return written > 0 ? Errno.None : Errno.ENOSPC;
            if (n == (int)Arch.PageSize)
                folio.Page().WriteWholePage(source.Slice((int)written, n));
            else
                source.Slice((int)written, n).CopyTo(folio.Page().WriteData()[inPage..]);
            folio.SetFlag(PageFlags.Dirty);
            folio.Put();
            written += (ulong)n;
        }
        _machine.AfterOperation();
        return Errno.None;
    }

    /// <summary>pread(2): read up to destination.Length bytes at byte <paramref name="offset"/>, stopping at
    /// end of file; <paramref name="read"/> says how many (0 at or past the end). Holes read as zeros
    /// without allocating. Always <see cref="Errno.None"/>.</summary>
    public Errno Pread(Span<byte> destination, ulong offset, out ulong read)
    {
        read = 0;
        ThrowIfUnusable();
        if (offset >= Size)
            return Errno.None;
        ulong want = Math.Min((ulong)destination.Length, Size - offset);
        while (read < want)
        {
            ulong pos = offset + read;
            int inPage = (int)(pos & (Arch.PageSize - 1));
            int n = (int)Math.Min(Arch.PageSize - (ulong)inPage, want - read);
            var dst = destination.Slice((int)read, n);
            if (Mapping.Get(pos >> Arch.PageShift) is { } folio && folio.TryGet())
            {
                folio.Page().CopyDataTo(inPage, dst);
                folio.Put();
            }
            else
            {
                dst.Clear();
            }
            read += (ulong)n;
        }
        return Errno.None;
    }

    /// <summary>close(): drop the file reference; the page cache is freed once no mapping holds the file
    /// either. Idempotent.</summary>
    public void Dispose()
    {
        if (_closed)
            return;
        _closed = true;
        if (_machine.IsDisposed)
            return;   // the kernel that held the file is gone; closing is all that is left to do
        Shmem.FilePut(_machine.Kernel, Mapping);
        _machine.AfterOperation();
    }
}

using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>The CPU's view of user memory: the MMU walk, and on a miss or protection failure
/// arch/x86/mm/fault.c do_user_addr_fault (access_error, handle_mm_fault, SIGSEGV/SIGBUS). Hardware
/// sets the accessed and dirty bits as it goes.</summary>
internal static class UserAccess
{
    /// <summary>Copies between user memory and a buffer, page by page, faulting as needed. The walk goes a
    /// PMD at a time: one mmap read lock and one page-table lock cover every present page of the span, as
    /// the MMU reuses one walk for the pages behind a PMD (the kernel's CPU access takes no lock at all;
    /// the model's locks only keep the tables still while it reads them).</summary>
    public static void Access(MmStruct mm, ulong addr, Span<byte> buffer, bool write)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            ulong a = mm.Arch.UntaggedAddr(addr + (ulong)done);
            // A non-canonical address is a general-protection fault on x86-64 (an address-size or
            // kernel-half fault on arm64), and nothing at or above TASK_SIZE is user memory: SIGSEGV
            // before any table index is taken from the address, so high bits never alias a mapping.
            if (a >= mm.Arch.TaskSize)
                ThrowHelper.Segv(addr + (ulong)done, "not a user address (general protection / SEGV_MAPERR)");
            ulong pmdEnd = (a | (Arch.PmdSize - 1)) + 1;
            int n = (int)Math.Min((ulong)(buffer.Length - done), Math.Min(pmdEnd, mm.Arch.TaskSize) - a);
            var span = buffer.Slice(done, n);
            mm.MmapLock.EnterReadLock();
            try
            {
                for (int attempt = 0; ; attempt++)
                {
                    int got = TryAccessPmd(mm, a, span, write);
                    if (got > 0)
                    {
                        done += got;
                        break;
                    }
                    if (attempt > 8)
                        ThrowHelper.KernelBug($"user access at 0x{a:x} kept faulting without making progress");
                    DoUserAddrFault(mm, a, write);
                }
            }
            finally
            {
                mm.MmapLock.ExitReadLock();
            }
        }
    }

    /// <summary>The MMU over the pages of <paramref name="span"/>, all behind one PMD: each present, permitted
    /// translation completes its part of the access; it stops at the first that would fault. Returns the
    /// bytes done (0: the first page faults).</summary>
    private static int TryAccessPmd(MmStruct mm, ulong addr, Span<byte> span, bool write)
    {
        var arch = mm.Arch;
        if (!mm.PmdTable(addr, alloc: false, out var pmdTable))
            return 0;
        int done = 0;
        lock (mm.PageTableLock)
        {
            ref ulong pmd = ref mm.PmdRef(pmdTable, addr);
            ulong p = pmd;
            if (p == 0)
                return 0;
            if (!arch.IsTable(p))
            {
                // A PROT_NONE huge PMD has the hardware present bit clear: the access faults.
                if (!arch.PmdPresent(p) || arch.PmdProtNone(p) || write && !arch.PmdWrite(p))
                    return 0;
                var head = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(p));
                pmd = write ? arch.PmdMkdirty(arch.PmdMkyoung(p)) : arch.PmdMkyoung(p);
                while (done < span.Length)
                    done += AccessPage(head.Nth(MmStruct.PteIndex(addr + (ulong)done)), addr + (ulong)done, span[done..], write);
                return done;
            }
            var table = mm.Table(arch.TablePfn(p));
            while (done < span.Length)
            {
                ulong a = addr + (ulong)done;
                ref ulong pte = ref table[MmStruct.PteIndex(a)];
                ulong e = pte;
                if (e == 0 || !arch.PtePresent(e) || arch.PteProtNone(e) || write && !arch.PteWrite(e))
                    break;
                var page = mm.Kernel.Memmap.PfnToPage(arch.PtePfn(e));
                pte = write ? arch.PteMkdirty(arch.PteMkyoung(e)) : arch.PteMkyoung(e);
                done += AccessPage(page, a, span[done..], write);
            }
        }
        return done;
    }

    /// <summary>One page's part of the access at <paramref name="addr"/>; returns the bytes it took.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int AccessPage(Page page, ulong addr, Span<byte> rest, bool write)
    {
        int inPage = (int)(addr & (Arch.PageSize - 1));
        int n = Math.Min(rest.Length, (int)Arch.PageSize - inPage);
        var chunk = rest[..n];
        if (write && n == (int)Arch.PageSize)
            page.WriteWholePage(chunk);
        else if (write)
            chunk.CopyTo(page.WriteData()[inPage..]);
        else
            page.CopyDataTo(inPage, chunk);
        return n;
    }

    /// <summary>do_user_addr_fault: find the VMA, check the access against it, handle the fault.</summary>
    private static void DoUserAddrFault(MmStruct mm, ulong addr, bool write)
    {
        // exceptions:page_fault_user (x86's tracepoint; error_code: X86_PF_WRITE | X86_PF_USER, as
        // the model's accesses never fault on a present page without a reason the handler finds).
        mm.Kernel.Trace?.Event(mm.Pid, "page_fault_user", $"address=0x{addr:x} ip=0x0 error_code=0x{(write ? 6 : 4):x}");
        var vma = mm.Vmas.Lookup(addr);
        if (vma is null)
            ThrowHelper.Segv(addr, "no mapping (SEGV_MAPERR)");
        // access_error: a write needs VM_WRITE, any access needs some access right.
        if (write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & (VmFlags.Read | VmFlags.Exec | VmFlags.Write)) == 0)
            ThrowHelper.Segv(addr, $"access not permitted by {vma} (SEGV_ACCERR)");
        var ret = Memory.HandleMmFault(vma, addr, FaultFlags.User | FaultFlags.AllowRetry | (write ? FaultFlags.Write : 0));
        if ((ret & VmFaultResult.Sigbus) != 0)
            throw KernelExceptions.Sigbus(addr, $"SIGBUS at 0x{addr:x}");
        if ((ret & VmFaultResult.Sigsegv) != 0)
            ThrowHelper.Segv(addr, "fault handler returned VM_FAULT_SIGSEGV");
        if ((ret & VmFaultResult.Oom) != 0)
            PagefaultOutOfMemory(mm, addr);
    }

    /// <summary>pagefault_out_of_memory: VM_FAULT_OOM that reached the #PF handler without a memcg OOM
    /// to finish. Since 5.16 the kernel no longer kills here: it warns (rate-limited) and returns, and the
    /// faulting instruction runs again, so a one-off allocation failure costs one retry.</summary>
    private static void PagefaultOutOfMemory(MmStruct mm, ulong addr) =>
        mm.Kernel.Dmesg.Log($"Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF (0x{addr:x})");
}

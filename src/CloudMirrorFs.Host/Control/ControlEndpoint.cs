using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace CloudMirrorFs.Host.Control;

/// <summary>
/// Where a running instance listens: <c>control.sock</c> in the state folder when that path fits a Unix socket
/// (108 bytes), and on Linux also an abstract socket name derived from the canonical state folder. The abstract name
/// needs no file, so <c>cmfs status</c> still reaches the instance when the state folder's disk has died (the default
/// layout keeps it beside the local facet) or its file system cannot hold a socket (a FUSE drive, some network file
/// systems). Either way the server admits only root and its own user (SO_PEERCRED).
/// </summary>
internal static class ControlEndpoint
{
    private const int MaxSocketPath = 100;

    public static string SocketPath(string stateDir) => Path.Combine(Path.GetFullPath(stateDir), "control.sock");

    /// <summary>The endpoints, in the order a client tries them: the socket file, then the abstract name.</summary>
    public static IReadOnlyList<UnixDomainSocketEndPoint> All(string stateDir)
    {
        var all = new List<UnixDomainSocketEndPoint>(2);
        string path = SocketPath(stateDir);
        if (Encoding.UTF8.GetByteCount(path) <= MaxSocketPath || !OperatingSystem.IsLinux())
        {
            all.Add(new UnixDomainSocketEndPoint(path));
        }
        if (OperatingSystem.IsLinux())
        {
            string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(stateDir))))[..24];
            all.Add(new UnixDomainSocketEndPoint("\0cmfs-" + hash));
        }
        return all;
    }

    /// <summary>
    /// The uid of the process at the other end (SO_PEERCRED); null where the OS does not say (not Linux). Both ends
    /// check it: the server admits only root and its own user, and a client talks only to a server run by root or by
    /// itself, so a process of another user that took the abstract name first (it has no file permissions) never gets
    /// a request nor gives an answer (a fake "drained" would tell a backup script its data is safe).
    /// </summary>
    public static uint? PeerUid(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        Span<byte> cred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        int n = socket.GetRawSocketOption(1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, cred);
        return n < 12 ? uint.MaxValue : System.Runtime.InteropServices.MemoryMarshal.Read<uint>(cred[4..]);
    }

    /// <summary>True when the peer is root or this process's own user (or the OS cannot say).</summary>
    public static bool PeerTrusted(Socket socket) => PeerUid(socket) is not { } uid || uid == 0 || uid == Geteuid();

    /// <summary>
    /// A client's check of the server: root, the caller, or the owner of the state folder (root asking a mount an
    /// ordinary user runs, with <c>sudo cmfs status</c>); the folder's owner only while it can be looked at.
    /// </summary>
    public static bool ServerTrusted(Socket socket, string stateDir)
    {
        if (PeerTrusted(socket))
        {
            return true;
        }
        try
        {
            return PeerUid(socket) is { } uid && CloudMirrorFs.Storage.LinuxStatx.Stat(Path.GetFullPath(stateDir), follow: true) is { } owner && owner.Uid == uid;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // the state folder's disk is dead: only root and the caller are trusted
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    internal static extern uint Geteuid();

    public static bool IsAbstract(UnixDomainSocketEndPoint endpoint) => endpoint.ToString().StartsWith('\0') || endpoint.ToString().StartsWith('@');
}

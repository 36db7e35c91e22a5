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

    public static bool IsAbstract(UnixDomainSocketEndPoint endpoint) => endpoint.ToString().StartsWith('\0') || endpoint.ToString().StartsWith('@');
}

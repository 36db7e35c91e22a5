using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace CloudMirrorFs.Host.Control;

/// <summary>
/// Where a running instance listens: <c>control.sock</c> in the state folder; where that path is too long for a Unix
/// socket (108 bytes), an abstract socket name derived from the canonical state folder.
/// </summary>
internal static class ControlEndpoint
{
    private const int MaxSocketPath = 100;

    public static string SocketPath(string stateDir) => Path.Combine(Path.GetFullPath(stateDir), "control.sock");

    public static UnixDomainSocketEndPoint For(string stateDir)
    {
        string path = SocketPath(stateDir);
        if (Encoding.UTF8.GetByteCount(path) <= MaxSocketPath || !OperatingSystem.IsLinux())
        {
            return new UnixDomainSocketEndPoint(path);
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(stateDir))))[..24];
        return new UnixDomainSocketEndPoint("\0cmfs-" + hash);
    }

    public static bool IsAbstract(UnixDomainSocketEndPoint endpoint) => endpoint.ToString().StartsWith('\0') || endpoint.ToString().StartsWith('@');
}

import re,sys,os
pat=re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|package|static|class|final|override|mutating|nonmutating|convenience|required|nonisolated|@discardableResult|@inlinable|@usableFromInline)\s+)*(func\s+[^\s(<]+|init[?!]?|deinit|subscript)\b')
res=[]
for root,_,files in os.walk(sys.argv[1]):
    for f in files:
        if not f.endswith('.swift'): continue
        p=os.path.join(root,f); L=open(p).read().split('\n')
        i=0
        while i<len(L):
            m=pat.match(L[i])
            if m and not L[i].strip().startswith('//'):
                # find opening brace
                depth=0; started=False; j=i
                while j<len(L):
                    line=re.sub(r'"(?:\\.|[^"\\])*"','""',L[j].split('//')[0] if '"' not in L[j] else L[j])
                    for ch in line:
                        if ch=='{': depth+=1; started=True
                        elif ch=='}': depth-=1
                    if started and depth<=0: break
                    if not started and j>i+15: break
                    j+=1
                if started:
                    n=j-i+1
                    if n>60: res.append((n,p,i+1,m.group(1)))
            i+=1
for r in sorted(res,reverse=True): print(*r)

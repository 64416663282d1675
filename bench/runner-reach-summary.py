# Summarizes bench/runner-reach.sh output: per setting and binary, the median
# ops/s (every run in brackets) and the median CPU time per operation.
#   python3 bench/runner-reach-summary.py OUT [OUT ...]
import sys, statistics as st, collections
rows=collections.defaultdict(list)
loads=[]
for f in sys.argv[1:]:
  for l in open(f):
    p=l.split()
    if len(p)<10: continue
    lab,n,c,ok,reached,verdict,wall,rss,u,s=p[:10]
    load=float(p[10].split('=')[1]); loads.append(load)
    rows[(int(n),int(c),lab)].append((int(reached),(float(u)+float(s))/int(ok)*1e6,int(rss)/1024, verdict))
labs=[]
for k in rows:
  if k[2] not in labs: labs.append(k[2])
print("load: min %.1f median %.1f max %.1f"%(min(loads),st.median(loads),max(loads)))
print("| nodes | clients | "+" | ".join(f"{l}: ops/s median (runs)" for l in labs)+" | "+" | ".join(f"{l}: CPU µs/op" for l in labs)+" |")
for nc in sorted(set((k[0],k[1]) for k in rows)):
  cells=[]; cpu=[]
  for l in labs:
    r=rows.get((nc[0],nc[1],l),[])
    cells.append(f"{st.median([x[0] for x in r]):,.0f} ({', '.join(f'{x[0]:,}' for x in r)})")
    cpu.append(f"{st.median([x[1] for x in r]):.0f}")
  print(f"| {nc[0]} | {nc[1]} | "+" | ".join(cells)+" | "+" | ".join(cpu)+" |")
print("verdicts:", collections.Counter(x[3] for v in rows.values() for x in v))
print("rss MB median per label:", {l: round(st.median([x[2] for k,v in rows.items() if k[2]==l for x in v]),1) for l in labs})
